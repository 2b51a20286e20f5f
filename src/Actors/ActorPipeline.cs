using System.Threading.Channels;
using Pipeline.Inference.Runtime;

namespace Pipeline.Actors;

/// <summary>
/// The actors of one loaded model and the bounded channels between them:
/// admission → tokenize → prefill → sample ⇄ decode-step, and every actor → detokenize.
/// </summary>
internal sealed class ActorPipeline : IAsyncDisposable
{
    private readonly Channel<Sequence> _admission;
    private readonly Channel<Emission> _detokenize;
    private readonly Task[] _stages;
    private readonly Task _detokenizer;
    private readonly PipelineSettings _settings;

    public ActorPipeline(LoadedModel model, PipelineSettings settings, KvMemoryAccount kvAccount)
    {
        settings.Validate();
        _settings = settings;
        Counters = new PipelineCounters();
        Model = model;
        var decoder = model.Decoder;
        int context = decoder.Config.SeqLen;
        _admission = Bounded<Sequence>(settings.AdmissionCapacity);
        var prefill = Bounded<Sequence>(settings.PrefillCapacity);
        var prefilled = Bounded<PrefillDone>(settings.PrefilledCapacity);
        var joins = Bounded<Sequence>(settings.JoinCapacity);
        var steps = Bounded<StepDone>(settings.StepCapacity);
        var replies = Bounded<StepSampled>(settings.StepCapacity);
        _detokenize = Bounded<Emission>(settings.DetokenizeCapacity);

        var tokenize = new TokenizeActor(_admission.Reader, prefill.Writer, _detokenize.Writer, model.Tokenizer, context, settings.Hook);
        var prefiller = new PrefillActor(prefill.Reader, prefilled.Writer, _detokenize.Writer, decoder, kvAccount, settings);
        var sampler = new SampleActor(prefilled.Reader, steps.Reader, replies.Writer, joins.Writer, _detokenize.Writer, model.Tokenizer, context, settings, Counters);
        var decode = new DecodeStepActor(joins.Reader, steps.Writer, replies.Reader, _detokenize.Writer, decoder, settings, Counters);
        var detokenizer = new DetokenizeActor(_detokenize.Reader, model.Tokenizer);

        _stages =
        [
            Task.Run(tokenize.RunAsync),
            Task.Run(prefiller.RunAsync),
            Task.Run(sampler.RunAsync),
            Task.Run(decode.RunAsync),
        ];
        _detokenizer = Task.Run(detokenizer.RunAsync);
        Completion = FinishAsync();
    }

    public LoadedModel Model { get; }
    public PipelineCounters Counters { get; }

    /// <summary>Requests admitted but not yet tokenized.</summary>
    public int QueueDepth => _admission.Reader.Count;

    /// <summary>Completes when every actor has stopped (after <see cref="Shutdown"/>).</summary>
    public Task Completion { get; }

    /// <summary>Admits a request, waiting while the admission queue is full.</summary>
    public ValueTask SubmitAsync(AdmittedRequest request, CancellationToken cancellation)
        => WriteAsync(new Sequence(request, cancellation), cancellation);

    /// <summary>Admits a request if the admission queue has room; false when it is full.</summary>
    public bool TrySubmit(AdmittedRequest request, CancellationToken cancellation)
        => _admission.Writer.TryWrite(new Sequence(request, cancellation));

    private async ValueTask WriteAsync(Sequence sequence, CancellationToken cancellation)
    {
        await _settings.Hook.BeforeHandOffAsync(HandOff.Admitted, sequence.Id);
        await _admission.Writer.WriteAsync(sequence, cancellation);
    }

    /// <summary>Stops admitting; the actors finish the work they hold and stop.</summary>
    public void Shutdown() => _admission.Writer.TryComplete();

    private async Task FinishAsync()
    {
        try { await Task.WhenAll(_stages); }
        finally
        {
            _detokenize.Writer.TryComplete();
            await _detokenizer;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Shutdown();
        await Completion;
    }

    private static Channel<T> Bounded<T>(int capacity) => Channel.CreateBounded<T>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = false,
        SingleWriter = false,
    });
}
