namespace Pipeline.Inference.Sampling;

/// <summary>Four 32-bit words: a Philox4x32 counter going in, or a block of output coming out.</summary>
internal readonly record struct Philox4x32Words(uint X0, uint X1, uint X2, uint X3);

/// <summary>
/// The Philox4x32-R block function of Salmon, Moraes, Dror and Shaw, "Parallel Random Numbers: As Easy
/// as 1, 2, 3" (SC11, 2011), as in Random123 and cuRAND. A keyed bijection on 128-bit counters: no state,
/// so any draw can be computed on its own. Checked against Random123's published known-answer vectors.
/// </summary>
internal static class Philox4x32
{
    // Multipliers and Weyl key increments from the paper (table 2 / section 5.2).
    private const uint Multiplier0 = 0xD2511F53;
    private const uint Multiplier1 = 0xCD9E8D57;
    private const uint KeyIncrement0 = 0x9E3779B9; // golden ratio
    private const uint KeyIncrement1 = 0xBB67AE85; // sqrt(3) - 1

    /// <summary>The standard round count; 7 passes BigCrush too, 10 is what everyone ships.</summary>
    public const int StandardRounds = 10;

    public static Philox4x32Words Block(Philox4x32Words counter, uint key0, uint key1, int rounds = StandardRounds)
    {
        var (x0, x1, x2, x3) = counter;
        for (var round = 0; round < rounds; round++)
        {
            // The key is bumped between rounds, not before the first one (Random123's key schedule).
            if (round > 0)
            {
                key0 += KeyIncrement0;
                key1 += KeyIncrement1;
            }
            var product0 = (ulong)Multiplier0 * x0;
            var product1 = (ulong)Multiplier1 * x2;
            (x0, x1, x2, x3) = (
                (uint)(product1 >> 32) ^ x1 ^ key0,
                (uint)product1,
                (uint)(product0 >> 32) ^ x3 ^ key1,
                (uint)product0);
        }
        return new Philox4x32Words(x0, x1, x2, x3);
    }
}
