namespace Sealpoint.Oci; internal static class Placeholder { }
