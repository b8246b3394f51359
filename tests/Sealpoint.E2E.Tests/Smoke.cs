namespace Sealpoint.E2E.Tests; public class Smoke { [Fact] public void Builds() => Assert.True(true); }
