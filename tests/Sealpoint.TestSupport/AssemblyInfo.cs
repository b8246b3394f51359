// The tests drive Linux-only tools (CRIU, runc, podman).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
