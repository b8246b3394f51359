namespace Sealpoint.TestSupport; internal static class Placeholder { }
