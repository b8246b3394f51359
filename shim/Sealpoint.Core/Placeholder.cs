namespace Sealpoint.Core; internal static class Placeholder { }
