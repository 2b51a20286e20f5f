namespace Pipeline.Integration.Server;

/// <summary>Polls a condition the test cannot be told about (freed KV memory) until it holds, failing loudly at a deadline.</summary>
public static class Eventually
{
    public static async Task HoldsAsync(Func<bool> condition, Func<string> describe, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"still not true after {(within ?? TimeSpan.FromSeconds(20)).TotalSeconds} s: {describe()}");
            await Task.Yield();
            await Task.Delay(10);
        }
    }
}
