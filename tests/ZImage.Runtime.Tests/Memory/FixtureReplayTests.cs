using System.Text.Json;
using ZImage.Runtime.Memory;
using ZImage.Tests.Infrastructure;

namespace ZImage.Runtime.Tests.Memory;

/// <summary>Replays every row of shared/fixtures/allocator/expected.json and matches every number PyTorch's policy gives.</summary>
public class FixtureReplayTests
{
    public static TheoryData<int, string, string> Rows()
    {
        var data = new TheoryData<int, string, string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.AllocatorFixtures, "expected.json")));
        int i = 0;
        foreach (var row in doc.RootElement.EnumerateArray())
            data.Add(i++, row.GetProperty("trace").GetString()!, row.GetProperty("config_string").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void ReplayReproducesEveryExpectedNumber(int row, string traceName, string config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.AllocatorFixtures, "expected.json")));
        var entry = doc.RootElement[row];
        var trace = TraceReader.ReadFile(Path.Combine(FixturePaths.AllocatorFixtures, traceName));
        long? deviceBytes = entry.GetProperty("device_bytes").ValueKind == JsonValueKind.Null ? null : entry.GetProperty("device_bytes").GetInt64();

        var result = TraceReplayer.Replay(trace, AllocatorSettings.Parse(config), deviceBytes);

        using var actual = JsonDocument.Parse(result.ToJson());
        int compared = 0;
        foreach (var expected in entry.GetProperty("expected").EnumerateObject())
        {
            Assert.True(actual.RootElement.TryGetProperty(expected.Name, out var value), $"result lacks '{expected.Name}'");
            Assert.True(JsonElement.DeepEquals(expected.Value, value),
                $"{traceName} [{config}] {expected.Name}: expected {expected.Value.GetRawText()}, got {value.GetRawText()}");
            compared++;
        }
        Assert.True(compared >= 14);
    }

    [Fact]
    public void EveryFixtureTraceReadsBackIdentically()
    {
        foreach (string path in Directory.GetFiles(FixturePaths.AllocatorFixtures, "*.jsonl"))
        {
            var trace = TraceReader.ReadFile(path);
            var writer = new StringWriter();
            trace.WriteTo(writer);
            var again = TraceReader.Parse(writer.ToString());
            Assert.True(trace.EventsEqual(again));
            Assert.Equal(trace.DeviceBytes, again.DeviceBytes);
            Assert.NotEmpty(trace.Events);
        }
    }
}
