using Pipeline.Inference.Runtime;

namespace Pipeline.Benchmarks.Micro;

/// <summary>
/// A loaded model and <c>batch</c> caches prefilled to a chosen length, restored before every
/// iteration so each measured step sees the same context. An iteration runs
/// <see cref="InvocationsPerIteration"/> steps, so cache lengths go from context − 15 to context;
/// all of them pad to the same multiple of the attention block (64) when context is one.
/// </summary>
internal sealed class DecodeStepFixture : IDisposable
{
    public const int InvocationsPerIteration = 16;

    private readonly LoadedModel _model;
    private readonly KvCache _template;
    private readonly int _batch;
    private readonly StepWorkspace _workspace = new();
    private readonly float[] _logits;
    private readonly int[] _token = [5];
    private SequenceStep[] _rows = [];

    public DecodeStepFixture(string modelName, int batch, int context)
    {
        _model = LoadedModel.Load(RepoModels.Directory(modelName), new RunnerOptions());
        _batch = batch;
        var config = _model.Decoder.Config;
        _logits = new float[batch * config.VocabSize];
        int prefill = Math.Max(1, context - (InvocationsPerIteration - 1));
        _template = new KvCache(config, initialCapacity: context + 1);
        var random = new SplitMixRandom(3);
        var prompt = Enumerable.Range(0, prefill).Select(i => i == 0 ? 1 : random.NextInt(3, config.VocabSize)).ToArray();
        int block = _model.Decoder.AttentionBlock;
        for (int fed = 0; fed < prompt.Length;)
        {
            int length = Math.Min(block - fed % block, prompt.Length - fed);
            _model.Decoder.Step([new SequenceStep(_template, prompt.AsMemory(fed, length))], _workspace, _logits);
            fed += length;
        }
    }

    public void Restore()
    {
        foreach (var row in _rows) row.Cache.Dispose();
        _rows = Enumerable.Range(0, _batch).Select(_ => new SequenceStep(_template.Clone(), _token)).ToArray();
    }

    public float Step()
    {
        _model.Decoder.Step(_rows, _workspace, _logits);
        return _logits[0];
    }

    public void Dispose()
    {
        foreach (var row in _rows) row.Cache.Dispose();
        _template.Dispose();
        _model.Dispose();
    }
}
