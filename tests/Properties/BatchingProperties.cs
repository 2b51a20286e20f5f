using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;

namespace Pipeline.Properties;

/// <summary>P6: one model call over a ragged batch equals, row by row and bit for bit, each row run alone.</summary>
public sealed class BatchingProperties(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>A row: how many positions its cache already holds, and how many tokens it feeds now.</summary>
    public sealed record Row(int Past, int Fed, int TokenSeed)
    {
        public override string ToString() => $"(past {Past}, feeds {Fed})";
    }

    private static Arbitrary<Row[]> Rows() =>
        (from past in Gen.Frequency((3, Gen.Choose(0, 140)), (1, Gen.Choose(140, 400)))
         from fed in Gen.Frequency((4, Gen.Constant(1)), (1, Gen.Choose(2, 40)))
         from seed in Gen.Choose(0, 1_000_000)
         select new Row(past, fed, seed))
        .ArrayOf().Where(rows => rows.Length is >= 1 and <= 12)
        .ToArbitrary();

    [Fact]
    public void A_batched_step_gives_each_row_the_logits_and_cache_of_its_solo_step() => CheckBatching(SharedModel.WithThreads, "P6");

    [Fact]
    public void A_batched_step_on_a_hugging_face_layout_qwen2_model_with_gqa_gives_each_row_its_solo_logits_and_cache() =>
        CheckBatching(HuggingFaceLayoutModel.Qwen2.WithThreads, "P6 (Qwen2 layout)");

    [Fact]
    public void A_batched_step_on_a_qwen3_layout_model_with_per_head_q_k_norms_gives_each_row_its_solo_logits_and_cache() =>
        CheckBatching(HuggingFaceLayoutModel.Qwen3.WithThreads, "P6 (Qwen3 layout)");

    [Fact]
    public void A_batched_step_on_a_llama3_layout_model_with_scaled_rope_gives_each_row_its_solo_logits_and_cache() =>
        CheckBatching(HuggingFaceLayoutModel.Llama3.WithThreads, "P6 (Llama 3 layout)");

    [Fact]
    public void A_batched_step_on_a_model_whose_attention_rotates_one_packed_product_gives_each_row_its_solo_logits_and_cache() =>
        CheckBatching(HuggingFaceLayoutModel.WideHeads.WithThreads, "P6 (heads of 16, packed q/k/v)");

    [Theory]
    [InlineData(WeightQuantization.Q8)]
    [InlineData(WeightQuantization.Q4)]
    public void A_batched_step_on_a_weight_quantized_model_gives_each_row_its_solo_logits_and_cache(WeightQuantization quantization) =>
        CheckBatching(threads => SharedModel.Quantized(quantization, threads), $"P6 ({quantization})");

    private void CheckBatching(Func<int, DecoderModel> modelWithThreads, string label)
    {
        int ragged = 0, multiBlock = 0, multiToken = 0;
        var sizes = new HashSet<int>();
        var property = Prop.ForAll(Rows(), Gen.Elements(1, 2).ToArbitrary(), (rows, threads) =>
        {
            sizes.Add(rows.Length);
            if (rows.Select(r => r.Past).Distinct().Count() > 1) ragged++;
            if (rows.Any(r => r.Past > 64) && rows.Any(r => r.Past <= 64)) multiBlock++;
            if (rows.Any(r => r.Fed > 1) && rows.Any(r => r.Fed == 1)) multiToken++;
            var model = modelWithThreads(threads);
            var solo = modelWithThreads(3 - threads);
            int vocab = model.Config.VocabSize;
            var caches = rows.Select(r => StepInputs.Prefilled(solo, r.Past, r.TokenSeed)).ToArray();
            var batchCaches = caches.Select(c => c.Clone()).ToArray();
            var fed = rows.Select(r => StepInputs.Tokens(r.TokenSeed + 1, r.Fed)).ToArray();

            var batchLogits = new float[rows.Length * vocab];
            model.Step(batchCaches.Select((c, i) => new SequenceStep(c, fed[i])).ToArray(), new StepWorkspace(), batchLogits);

            for (int i = 0; i < rows.Length; i++)
            {
                var soloLogits = new float[vocab];
                solo.Step([new SequenceStep(caches[i], fed[i])], new StepWorkspace(), soloLogits);
                if (!BitEqual(soloLogits, batchLogits.AsSpan(i * vocab, vocab)))
                    return false.Label($"row {i} {rows[i]}: logits differ");
                if (!CachesEqual(caches[i], batchCaches[i], model.Config))
                    return false.Label($"row {i} {rows[i]}: cache differs");
            }
            foreach (var c in caches.Concat(batchCaches)) c.Dispose();
            return true.ToProperty();
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Scheduling.PropertyBudget.Cases(30)).WithQuietOnSuccess(true), property);
        output.WriteLine($"{label} explored: {sizes.Count} batch sizes, {ragged} ragged batches, {multiBlock} mixing one-block and multi-block pasts, {multiToken} mixing prefill chunks with decode rows");
        Assert.True(sizes.Count >= 5 && ragged >= 10 && multiBlock >= 5 && multiToken >= 5, "P6 explored too little");
    }

    internal static bool BitEqual(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => Pipeline.Testing.Bits.Equal(a, b);

    private static bool CachesEqual(KvCache a, KvCache b, Pipeline.Inference.Models.LlamaConfig c)
    {
        if (a.Length != b.Length) return false;
        for (int l = 0; l < c.Layers; l++)
            for (int h = 0; h < c.KvHeads; h++)
                if (!BitEqual(a.Keys(l, h), b.Keys(l, h)) || !BitEqual(a.Values(l, h), b.Values(l, h))) return false;
        return true;
    }
}
