namespace Sealpoint.TestSupport;

/// <summary>
/// The machine is not prepared for the tests (a tool, a build output or root is missing).
/// The message always says how to fix it; tests let it fail the test instead of skipping.
/// </summary>
public sealed class TestEnvironmentException(string message) : Exception(message);
