using System.Threading.Channels;
using Pipeline.Actors;
using Pipeline.Actors.Scheduling;
using Pipeline.Inference.Runtime;

namespace Pipeline.Wiring;

/// <summary>
/// The actors of one loaded model and the bounded channels between them:
/// admission → tokenize → prefill → sample ⇄ decode-step, and every actor → detokenize.
/// The one place where channels, capacities and the scheduling hook are chosen.
/// </summary>
internal sealed class ActorPipeline : IAsyncDisposable
{
    private readonly Channel<Sequence> _admission;
    private readonly ChannelWriter<Sequence> _admit;
    private readonly Channel<Emission> _detokenize;
    private readonly Task[] _stages;
    private readonly Task _detokenizer;

    public ActorPipeline(LoadedModel model, PipelineSettings settings, KvMemoryAccount kvAccount)
    {
        settings.Validate();
        Counters = new PipelineCounters();
        var decoder = model.Decoder;
        int context = decoder.Config.SeqLen;
        var hook = settings.Hook;
        // Callers write admissions, every actor writes emissions; every other channel has one writer.
        _admission = Bounded<Sequence>(settings.AdmissionCapacity, singleWriter: false);
        var prefill = Bounded<Sequence>(settings.PrefillCapacity);
        var prefilled = Bounded<PrefillDone>(settings.PrefilledCapacity);
        var joins = Bounded<Sequence>(settings.JoinCapacity);
        var steps = Bounded<StepDone>(settings.StepCapacity);
        var replies = Bounded<StepSampled>(settings.StepCapacity);
        _detokenize = Bounded<Emission>(settings.DetokenizeCapacity, singleWriter: false);

        // The scheduling hook (a test seam) is installed here and nowhere else: on the writing
        // end of every channel, so each hand-off passes it once per request it carries.
        _admit = Hooked(_admission.Writer, hook, HandOff.Admitted, s => [s.Id]);
        var toPrefill = Hooked(prefill.Writer, hook, HandOff.Tokenized, s => [s.Id]);
        var toSample = Hooked(prefilled.Writer, hook, HandOff.Prefilled, p => [p.Sequence.Id]);
        var toJoin = Hooked(joins.Writer, hook, HandOff.Joined, s => [s.Id]);
        var toSampleStep = Hooked(steps.Writer, hook, HandOff.Stepped, d => d.Sequences.Select(s => s.Id));
        var toDecode = Hooked(replies.Writer, hook, HandOff.Sampled, r => r.Continuing.Select(s => s.Id));
        var toDetokenize = Hooked(_detokenize.Writer, hook, HandOff.Emitted, e => [e.Request.Id]);

        var tokenize = new TokenizeActor(_admission.Reader, toPrefill, toDetokenize, model.Tokenizer, context);
        var prefiller = new PrefillActor(prefill.Reader, toSample, toDetokenize, decoder, kvAccount, settings.MaxPrefillBatch, hook);
        var sampler = new SampleActor(prefilled.Reader, steps.Reader, toDecode, toJoin, toDetokenize, model.Tokenizer, context, Counters);
        var decode = new DecodeStepActor(joins.Reader, toSampleStep, replies.Reader, toDetokenize, decoder, settings.MaxBatch, hook, Counters);
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

    public PipelineCounters Counters { get; }

    /// <summary>Requests admitted but not yet tokenized.</summary>
    public int QueueDepth => _admission.Reader.Count;

    /// <summary>Completes when every actor has stopped (after <see cref="Shutdown"/>).</summary>
    public Task Completion { get; }

    /// <summary>Admits a request, waiting while the admission queue is full.</summary>
    public ValueTask SubmitAsync(AdmittedRequest request, CancellationToken cancellation)
        => _admit.WriteAsync(new Sequence(request, cancellation), cancellation);

    /// <summary>Admits a request if the admission queue has room; false when it is full.</summary>
    public bool TrySubmit(AdmittedRequest request, CancellationToken cancellation)
        => _admit.TryWrite(new Sequence(request, cancellation));

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

    private static ChannelWriter<T> Hooked<T>(ChannelWriter<T> writer, ISchedulingHook hook, HandOff point, Func<T, IEnumerable<long>> requestIds)
        => hook is NoSchedulingHook ? writer : new HandOffWriter<T>(writer, hook, point, requestIds);

    // Each channel has exactly one reading actor.
    private static Channel<T> Bounded<T>(int capacity, bool singleWriter = true) => Channel.CreateBounded<T>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
        SingleWriter = singleWriter,
    });
}
