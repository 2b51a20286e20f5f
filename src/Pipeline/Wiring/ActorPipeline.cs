using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;
using Pipeline.Actors;
using Pipeline.Actors.Admission;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Wiring;

/// <summary>
/// The actors of one loaded model and the bounded stages between them:
/// admission → tokenize → prefill → sample ⇄ decode-step, and every actor → detokenize.
/// The one place where channels, Dataflow blocks, capacities and the scheduling hook are chosen.
/// </summary>
/// <remarks>
/// Tokenize and detokenize are Dataflow blocks: tokenize is stateless, so it runs with a bounded
/// degree of parallelism (a long prompt does not hold up the rest), and detokenize handles one
/// message at a time; Dataflow gives both their bounded input and carries completion and faults
/// onward. Prefill, sample and decode stay channel loops: they own state across messages (caches,
/// the running batch) and the decode ⇄ sample cycle has its one-message-in-flight protocol.
/// Supervision: each actor has one fault boundary that reports to this pipeline's
/// <see cref="FaultBoundary"/>; the first fault aborts every actor, and once all have stopped
/// <see cref="AbortAsync"/> releases every cache still held and fails every request still in
/// flight (<see cref="LiveSequences"/>). Whether a new pipeline replaces this one is the host's call.
/// </remarks>
internal sealed class ActorPipeline : IAsyncDisposable
{
    private readonly ActionBlock<Sequence> _tokenize;
    private readonly ChannelWriter<Sequence> _admit;
    private readonly ActionBlock<Emission> _detokenize;
    private readonly Task[] _stages;
    private readonly FaultBoundary _boundary = new();
    private readonly LiveSequences _live = new();

    /// <param name="kvAccount">Counts the bytes live KV caches hold (the host's, across restarts).</param>
    /// <param name="kvBudget">What tokenize reserves each request's KV memory from (the host's, across restarts).</param>
    public ActorPipeline(LoadedModel model, PipelineSettings settings, KvMemoryAccount kvAccount, KvBudget kvBudget)
    {
        settings.Validate();
        Counters = new PipelineCounters();
        var decoder = model.Decoder;
        int context = decoder.Config.SeqLen;
        var hook = settings.Hook;
        // Tokenize workers write to prefill and every actor writes emissions; each other channel has one writer.
        var prefill = Bounded<Sequence>(settings.PrefillCapacity, singleWriter: false);
        var prefilled = Bounded<PrefillDone>(settings.PrefilledCapacity);
        var joins = Bounded<Sequence>(settings.JoinCapacity);
        var steps = Bounded<StepDone>(settings.StepCapacity);
        var replies = Bounded<StepSampled>(settings.StepCapacity);

        var detokenizer = new DetokenizeActor(model.Tokenizer, hook, _live, _boundary);
        _detokenize = new ActionBlock<Emission>(detokenizer.HandleAsync, new ExecutionDataflowBlockOptions
        {
            BoundedCapacity = settings.DetokenizeCapacity,
            MaxDegreeOfParallelism = 1, // one message at a time, in order: a request's events stay in order
            CancellationToken = _boundary.Abort, // an abort drops what waits; the wiring fails those requests
        });

        // The scheduling hook (a test seam) is installed here and nowhere else: on the writing
        // end of every stage, so each hand-off passes it once per request it carries.
        var toPrefill = Hooked(prefill.Writer, hook, HandOff.Tokenized, s => [s.Id]);
        var toSample = Hooked(prefilled.Writer, hook, HandOff.Prefilled, p => [p.Sequence.Id]);
        var toJoin = Hooked(joins.Writer, hook, HandOff.Joined, s => [s.Id]);
        var toSampleStep = Hooked(steps.Writer, hook, HandOff.Stepped, d => d.Sequences.Select(s => s.Id));
        var toDecode = Hooked(replies.Writer, hook, HandOff.Sampled, r => r.Continuing.Select(s => s.Id));
        var toDetokenize = Hooked(new TargetBlockWriter<Emission>(_detokenize), hook, HandOff.Emitted, e => [e.Request.Id]);

        var tokenize = new TokenizeActor(toPrefill, toDetokenize, model.Tokenizer, new PromptLengthBound(model.Tokenizer), context,
            kvBudget, KvCache.BytesPerPosition(decoder.Config), Counters, _boundary);
        _tokenize = new ActionBlock<Sequence>(tokenize.TokenizeAsync, new ExecutionDataflowBlockOptions
        {
            CancellationToken = _boundary.Abort,
            MaxDegreeOfParallelism = settings.TokenizeParallelism,
            // AdmissionCapacity requests may wait; the ones being tokenized come on top (as the
            // one a single tokenize loop holds did).
            BoundedCapacity = settings.AdmissionCapacity + settings.TokenizeParallelism,
        });
        _admit = Hooked(new TargetBlockWriter<Sequence>(_tokenize), hook, HandOff.Admitted, s => [s.Id]);
        // Completion and faults flow on: prefill's channel completes when tokenize has, with its error if it faulted.
        _ = _tokenize.Completion.ContinueWith(t => prefill.Writer.TryComplete(t.Exception?.GetBaseException()), TaskScheduler.Default);

        // Finished caches' arrays, for the next caches of their capacity: prefill takes, any actor gives back.
        KvShelf = new KvArrayShelf(Math.Min(kvBudget.Bytes, MaxShelvedKvBytes));
        var prefiller = new PrefillActor(prefill.Reader, toSample, toDetokenize, decoder, kvAccount, KvShelf, settings.MaxPrefillBatch, hook, Counters, _boundary);
        var sampler = new SampleActor(prefilled.Reader, steps.Reader, toDecode, toJoin, toDetokenize, model.Tokenizer, hook, context, Counters, _boundary);
        var decode = new DecodeStepActor(joins.Reader, toSampleStep, replies.Reader, toDetokenize, decoder, settings.MaxBatch, hook, Counters, _boundary);

        _stages =
        [
            _tokenize.Completion,
            Task.Run(prefiller.RunAsync),
            Task.Run(sampler.RunAsync),
            Task.Run(decode.RunAsync),
        ];
        Completion = FinishAsync();
    }

    /// <summary>Completes with the first actor fault; never for a pipeline that stops normally.</summary>
    public Task<ActorFault> Faulted => _boundary.Faulted;

    /// <summary>Requests admitted and not yet ended.</summary>
    public int LiveRequests => _live.Count;

    /// <summary>
    /// After a fault: waits for every actor to stop (each observes the abort), then releases every
    /// cache still held and fails every request still in flight with <paramref name="error"/>
    /// (told whether the faulting actor held the request).
    /// </summary>
    public async Task AbortAsync(ActorFault fault, Func<ActorFault, bool, Exception> error)
    {
        await Completion;
        _live.FailAll(fault, error);
    }

    public PipelineCounters Counters { get; }

    /// <summary>The most KV memory finished caches leave on the shelf for reuse (at most the budget).</summary>
    internal const long MaxShelvedKvBytes = 256L << 20;

    /// <summary>Where finished caches' arrays wait for the next caches of their capacity.</summary>
    internal KvArrayShelf KvShelf { get; }

    /// <summary>Requests admitted but not yet tokenized.</summary>
    public int QueueDepth => _tokenize.InputCount;

    /// <summary>Completes when every actor has stopped (after <see cref="Shutdown"/>).</summary>
    public Task Completion { get; }

    /// <summary>Admits a request, waiting while the admission queue is full.</summary>
    public async ValueTask SubmitAsync(AdmittedRequest request, CancellationToken cancellation)
    {
        var sequence = new Sequence(request, cancellation);
        _live.Admitted(sequence);
        try
        {
            await _admit.WriteAsync(sequence, cancellation);
        }
        catch
        {
            _live.Ended(request.Id);
            throw;
        }
    }

    /// <summary>Admits a request if the admission queue has room; false when it is full (or the pipeline has stopped).</summary>
    public bool TrySubmit(AdmittedRequest request, CancellationToken cancellation)
    {
        var sequence = new Sequence(request, cancellation);
        _live.Admitted(sequence);
        if (_admit.TryWrite(sequence)) return true;
        _live.Ended(request.Id);
        return false;
    }

    /// <summary>True once <see cref="Shutdown"/> was called or the pipeline aborted: nothing more is admitted.</summary>
    public bool IsClosed => _tokenize.Completion.IsCompleted || _boundary.IsAborting || _shutdown;
    private volatile bool _shutdown;

    /// <summary>Stops admitting; the actors finish the work they hold and stop.</summary>
    public void Shutdown()
    {
        _shutdown = true;
        _tokenize.Complete();
    }

    /// <summary>Never throws: the actors report their faults to the boundary, and an abort cancels the blocks.</summary>
    private async Task FinishAsync()
    {
        foreach (var stage in _stages) await Quietly(stage);
        // Every writer has stopped: detokenize finishes what it holds (unless aborted), then completes.
        _detokenize.Complete();
        await Quietly(_detokenize.Completion);
    }

    private static async Task Quietly(Task stage)
    {
        try { await stage; }
        catch (OperationCanceledException) { } // a block cancelled by the abort
    }

    public async ValueTask DisposeAsync()
    {
        Shutdown();
        await Completion;
        _boundary.Dispose();
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
