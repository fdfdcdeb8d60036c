using ZImage.Runtime.Memory;

namespace ZImage.Runtime.Tests.Memory;

public class AllocatorSettingsTests
{
    [Fact]
    public void ParsesTheStringUsersKnow()
    {
        var s = AllocatorSettings.Parse("max_split_size_mb:128,roundup_power2_divisions:4,garbage_collection_threshold:0.8");
        Assert.Equal(128, s.MaxSplitSizeMB);
        Assert.Equal(128 * ByteSize.MiB, s.MaxSplitSizeBytes);
        Assert.All(s.RoundupPower2Divisions, d => Assert.Equal(4, d));
        Assert.Equal(0.8, s.GarbageCollectionThreshold);
        Assert.Equal("max_split_size_mb:128,roundup_power2_divisions:4,garbage_collection_threshold:0.8", s.ToString());
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("  ", "")]
    [InlineData("backend:native,expandable_segments:False", "")]
    [InlineData(" garbage_collection_threshold : 0.5 , max_split_size_mb : 20 ", "max_split_size_mb:20,garbage_collection_threshold:0.5")]
    [InlineData("max_split_size_mb:64,max_split_size_mb:256", "max_split_size_mb:256")]
    [InlineData("roundup_power2_divisions:[256:1,512:2,1024:4,>:8]", "roundup_power2_divisions:[256:1,512:2,1024:4,>:8]")]
    [InlineData("roundup_power2_divisions:[1:2,>:2]", "roundup_power2_divisions:2")]
    [InlineData("max_non_split_rounding_mb:40,per_process_memory_fraction:0.9", "max_non_split_rounding_mb:40,per_process_memory_fraction:0.9")]
    public void ToStringIsCanonicalAndRoundTrips(string text, string canonical)
    {
        var s = AllocatorSettings.Parse(text);
        Assert.Equal(canonical, s.ToString());
        Assert.Equal(s, AllocatorSettings.Parse(s.ToString()));
    }

    [Fact]
    public void PerIntervalListFollowsTheC10Parser()
    {
        var s = AllocatorSettings.Parse("roundup_power2_divisions:[256:1,512:2,1024:4,>:8]");
        // The first key fills every interval up to its own (1 MiB .. 256 MiB), then one interval per key, '>' the rest.
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8], s.RoundupPower2Divisions);
        Assert.Equal(1, s.GetRoundupPower2Divisions(300 * ByteSize.MiB));
        Assert.Equal(2, s.GetRoundupPower2Divisions(600 * ByteSize.MiB));
        Assert.Equal(8, s.GetRoundupPower2Divisions(5 * ByteSize.GiB));
    }

    [Fact]
    public void OptionsRecordAndStringAgree()
    {
        var record = new AllocatorSettings { MaxSplitSizeMB = 128 }.WithRoundupPower2Divisions(4);
        Assert.Equal(AllocatorSettings.Parse("roundup_power2_divisions:4,max_split_size_mb:128"), record);
        Assert.Equal(record.GetHashCode(), AllocatorSettings.Parse(record.ToString()).GetHashCode());
        Assert.Equal(AllocatorSettings.Default, AllocatorSettings.Parse(null));
    }

    [Theory]
    [InlineData("max_split_size_mb:19", "max_split_size_mb", ">= 20")]
    [InlineData("max_split_size_mb:abc", "max_split_size_mb", ">= 20")]
    [InlineData("max_split_size_mb:-5", "max_split_size_mb", ">= 20")]
    [InlineData("max_non_split_rounding_mb:10", "max_non_split_rounding_mb", ">= 20")]
    [InlineData("garbage_collection_threshold:1.0", "garbage_collection_threshold", "< 1.0")]
    [InlineData("garbage_collection_threshold:0", "garbage_collection_threshold", "> 0.0")]
    [InlineData("roundup_power2_divisions:3", "roundup_power2_divisions", "power of two")]
    [InlineData("roundup_power2_divisions:[256:3]", "roundup_power2_divisions", "power of two")]
    [InlineData("roundup_power2_divisions:[300:2]", "roundup_power2_divisions", "powers of two")]
    [InlineData("roundup_power2_divisions:[256:2", "roundup_power2_divisions", "']'")]
    [InlineData("per_process_memory_fraction:1.5", "per_process_memory_fraction", "<= 1.0")]
    [InlineData("expandable_segments:True", "expandable_segments", "False")]
    [InlineData("backend:cudaMallocAsync", "backend", "native")]
    [InlineData("max_split_mb:128", "max_split_mb", "Allowed keys")]
    [InlineData("max_split_size_mb", "max_split_size_mb", "':'")]
    [InlineData("max_split_size_mb:128,", "max_split_size_mb:128,", "trailing")]
    public void BadStringsNameTheKeyValueAndAllowedRange(string text, string key, string rule)
    {
        var ex = Assert.Throws<AllocatorSettingsException>(() => AllocatorSettings.Parse(text));
        Assert.Equal(key, ex.Key);
        Assert.Contains(key, ex.Message);
        Assert.Contains(rule, ex.Message);
        Assert.IsAssignableFrom<FormatException>(ex);
        Assert.False(AllocatorSettings.TryParse(text, out _));
    }

    [Fact]
    public void AllocatorRejectsAnOutOfRangeRecord()
    {
        using var backend = new SimulatedDeviceBackend(ByteSize.GiB);
        var ex = Assert.Throws<AllocatorSettingsException>(() => new CachingAllocator(backend, new AllocatorSettings { MaxSplitSizeMB = 4 }));
        Assert.Equal("max_split_size_mb", ex.Key);
    }
}
