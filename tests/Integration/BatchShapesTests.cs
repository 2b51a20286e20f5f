using Pipeline.Inference.Onnx;
using Pipeline.Inference.Runtime;
using Pipeline.Testing;

namespace Pipeline.Integration;

/// <summary>The fixed call shapes CUDA needs (BatchShapes): parsing, and that padding changes no bits where kernels are row-exact.</summary>
public sealed class BatchShapesTests
{
    [Theory]
    [InlineData("exact", "exact")]
    [InlineData("cuda", "decode=32,small=8,prefill=8,block,context")]
    [InlineData("decode=32,small=8,context", "decode=32,small=8,context")]
    [InlineData("decode=64, prefill=4 ,block", "decode=64,prefill=4,block")]
    [InlineData("context", "context")]
    public void Batch_shapes_parse_from_the_option_text_and_print_back(string text, string printed)
    {
        Assert.Equal(printed, BatchShapes.Parse(text, DecoderModel.CudaShapes).ToString());
    }

    [Theory]
    [InlineData("decode=0")]
    [InlineData("rows=4")]
    [InlineData("decode=x")]
    public void A_bad_batch_shape_is_an_error_naming_the_option(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => BatchShapes.Parse(text, DecoderModel.CudaShapes));
        Assert.Contains("--batch-shapes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_call_of_a_kind_has_one_shape_and_a_larger_batch_runs_as_several_calls()
    {
        var shapes = DecoderModel.CudaShapes;
        Assert.Equal(32, shapes.Rows(StepKind.Decode, 1));
        Assert.Equal(32, shapes.Rows(StepKind.Decode, 32));
        Assert.Equal(32, shapes.FixedRows(StepKind.Decode));
        Assert.Equal(8, shapes.Rows(StepKind.Prefill, 3));
        Assert.Equal(64, shapes.NewTokens(StepKind.Prefill, 1, 64));
        Assert.Equal(1, shapes.NewTokens(StepKind.Decode, 1, 64));
        Assert.Equal(512, shapes.Past(StepKind.Decode, 0, 64, 512));
        Assert.Equal(512, shapes.Past(StepKind.Decode, 300, 64, 512));
        Assert.Equal(512, shapes.Past(StepKind.Prefill, 300, 64, 512));
        Assert.Equal(0, shapes.Past(StepKind.Prefill, 0, 64, 512));
        Assert.Equal(128, BatchShapes.Exact.Past(StepKind.Decode, 100, 64, 512));
    }

    [Fact]
    public void A_prefill_call_mixing_first_chunks_with_later_ones_runs_the_first_chunks_apart_with_no_past()
    {
        using var padded = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = DecoderModel.CudaShapes });
        var model = padded.Decoder;
        var fresh = StepInputs.Prefilled(model, past: 0, seed: 1);
        var continuing = StepInputs.Prefilled(model, past: 70, seed: 2);
        var workspace = new StepWorkspace();
        var logits = new float[2 * model.Config.VocabSize];

        model.Step([new SequenceStep(fresh, StepInputs.Tokens(5, 20)), new SequenceStep(continuing, StepInputs.Tokens(6, 20))], workspace, logits, StepKind.Prefill);

        // The continuing row ran first (its past padded to the context), the fresh row last, alone
        // in a call with no past: padded to the context it would attend over 512 masked positions
        // and, on CUDA, get other bits than the same chunk gets in a call of first chunks.
        Assert.Equal(0, workspace.PastStride);
        Assert.Equal(20, fresh.Length);
        Assert.Equal(90, continuing.Length);
        fresh.Dispose();
        continuing.Dispose();
    }

    [Theory]
    [InlineData(false, 3)]
    [InlineData(false, 40)]
    [InlineData(true, 3)]
    [InlineData(true, 11)]
    public void On_the_cpu_a_call_padded_to_the_cuda_shapes_gives_every_row_the_bits_of_the_unpadded_call(bool prefill, int rows)
    {
        var kind = prefill ? StepKind.Prefill : StepKind.Decode;
        // The block graph, which the CUDA shapes run; GroupQueryAttention has no padded form.
        using var exact = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = BatchShapes.Exact, Attention = AttentionKernel.Blocks });
        using var padded = LoadedModel.Load(RepoPaths.ModelDir, new RunnerOptions { IntraOpThreads = 1, Shapes = DecoderModel.CudaShapes });
        var model = exact.Decoder;
        int vocab = model.Config.VocabSize;
        var caches = Enumerable.Range(0, rows).Select(i => StepInputs.Prefilled(model, past: (i * 37) % 150, seed: i)).ToArray();
        var copies = caches.Select(c => c.Clone()).ToArray();
        var fed = Enumerable.Range(0, rows).Select(i => StepInputs.Tokens(100 + i, kind == StepKind.Decode ? 1 : 1 + (i * 13) % 40)).ToArray();
        var a = new float[rows * vocab];
        var b = new float[rows * vocab];

        model.Step(caches.Select((c, i) => new SequenceStep(c, fed[i])).ToArray(), new StepWorkspace(), a, kind);
        padded.Decoder.Step(copies.Select((c, i) => new SequenceStep(c, fed[i])).ToArray(), new StepWorkspace(), b, kind);

        Assert.True(Bits.Equal(a, b), "padded logits differ");
        for (int i = 0; i < rows; i++)
            for (int l = 0; l < model.Config.Layers; l++)
                for (int h = 0; h < model.Config.KvHeads; h++)
                    Assert.True(Bits.Equal(caches[i].Keys(l, h), copies[i].Keys(l, h)) && Bits.Equal(caches[i].Values(l, h), copies[i].Values(l, h)), $"row {i}: cache differs");
        foreach (var c in caches.Concat(copies)) c.Dispose();
    }
}
