using System.Text.Json.Nodes;
using Sealpoint.Core;
using Sealpoint.Core.Streaming;

namespace Sealpoint.Cli.CommandLine;

/// <summary>The "memory" object of the streamed commands' --json output: whether this process's memory is kept out of swap and core dumps.</summary>
public static class MemoryReport
{
    public static JsonObject Json()
    {
        var protection = MemoryProtection.Applied; // null when not run through Main (in-process tests)
        var (proportional, locked) = ProcessMemory.ProportionalAndLockedBytes();
        return new JsonObject
        {
            ["locked"] = protection?.Locked ?? false, ["coreDumpsOff"] = protection?.CoreDumpsOff ?? false,
            ["proportionalResidentBytes"] = proportional, ["lockedBytes"] = locked,
        };
    }
}
