using System.Diagnostics;
using System.Runtime.CompilerServices;
using Pipeline.Actors;
using Pipeline.Actors.Admission;
using Pipeline.Actors.Supervision;
using Pipeline.Wiring;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Sampling;

namespace Pipeline;

/// <summary>
/// Runs many concurrent generations on one loaded model. Thread-safe: call
/// <see cref="GenerateAsync"/> and <see cref="CompleteAsync"/> from anywhere.
/// </summary>
/// <remarks>
/// The host supervises its pipeline: when an actor faults, every request in flight fails with a
/// clear error, new requests fail at once with <see cref="PipelineUnavailableException"/>, and a
/// fresh pipeline replaces the faulted one, at most <see cref="PipelineHostOptions.MaxRestarts"/>
/// times; after that the host stays faulted (and says why in <see cref="FaultReason"/>).
/// </remarks>
public sealed class PipelineHost : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private ActorPipeline _pipeline;
    private readonly PipelineSettings _settings;
    private readonly PipelineHostOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly bool _ownsModel;
    private long _nextId;
    private long _faults;
    private int _restarts;
    // Non-null while no pipeline takes requests: the fault being handled, or the one the host stays in.
    private volatile string? _faultReason;
    private volatile bool _draining;
    private Task _supervising;

    private PipelineHost(LoadedModel model, bool ownsModel, PipelineHostOptions options)
    {
        _options = options;
        _ownsModel = ownsModel;
        Model = model;
        var settings = options.Settings ?? new PipelineSettings { MaxBatch = options.MaxBatch }.WithAllCapacities(options.ChannelCapacity) with
        {
            // Under fixed shapes a prefill call has room for the shape's rows: fill it.
            MaxPrefillBatch = Math.Max(new PipelineSettings().MaxPrefillBatch, model.Decoder.Shapes.PrefillRows),
            AdmissionCapacity = options.AdmissionCapacity,
            TokenizeParallelism = options.TokenizeParallelism,
            StepCapacity = Math.Min(options.ChannelCapacity, 2),
            // A step hands detokenize one emission per row: room for two steps' worth, so sample
            // never waits on spelling while the next part's rows are ready (at 8, sample waited
            // on detokenize for most of a 64-row step).
            DetokenizeCapacity = Math.Max(options.ChannelCapacity, 2 * options.MaxBatch),
        };
        if (options.Hook is { } hook) settings = settings with { Hook = hook };
        _settings = settings;
        KvBudget = new KvBudget(options.KvBudgetBytes
            ?? KvBudgetSizing.Default(model.Decoder.Config, model.Decoder.WeightBytes, KvBudgetSizing.MachineBytes()));
        _pipeline = new ActorPipeline(model, settings, KvMemory, KvBudget);
        _supervising = SuperviseAsync(_pipeline);
    }

    /// <summary>Why the host takes no requests now (a fault being recovered from, or the last one), or null when it does.</summary>
    public string? FaultReason => _faultReason;

    /// <summary>True once <see cref="DrainAsync"/> was called: the host finishes what it has and takes nothing new.</summary>
    public bool IsDraining => _draining;

    /// <summary>Actor faults since the host started (each one aborted a pipeline).</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>Pipelines started to replace faulted ones.</summary>
    public int Restarts => Volatile.Read(ref _restarts);

    /// <summary>Requests admitted and not yet ended (on the current pipeline).</summary>
    internal int LiveRequests => _pipeline.LiveRequests;

    /// <summary>
    /// Waits for a fault of <paramref name="pipeline"/>; then fails what it held, and restarts or
    /// stays faulted. The actors only report faults; this is where the decision is made.
    /// </summary>
    private async Task SuperviseAsync(ActorPipeline pipeline)
    {
        var fault = await pipeline.Faulted.ConfigureAwait(false);
        Interlocked.Increment(ref _faults);
        _faultReason = $"{fault.Reason}; restarting";
        await pipeline.AbortAsync(fault, Failure).ConfigureAwait(false);
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested || _draining) return;
            if (_restarts >= _options.MaxRestarts)
            {
                _faultReason = $"{fault.Reason}; the pipeline stays faulted after {_restarts} restart(s)";
                return;
            }
            _restarts++;
            _pipeline = new ActorPipeline(Model, _settings, KvMemory, KvBudget);
            _faultReason = null;
            _supervising = SuperviseAsync(_pipeline);
        }
    }

    /// <summary>The error a request in flight gets when the pipeline aborts.</summary>
    private static PipelineUnavailableException Failure(ActorFault fault, bool heldByFaultingActor) => heldByFaultingActor
        ? new PipelineUnavailableException($"this request failed because {fault.Reason} while processing it", fault.Error)
        : new PipelineUnavailableException($"this request was aborted because {fault.Reason}; the pipeline is restarting", fault.Error);

    /// <summary>The loaded model's name (the checkpoint's file name), as the server and IChatClient report it.</summary>
    public string ModelName => Model.Name;

    /// <summary>Whether the model brings its own chat template (else a chat is its messages joined by newlines).</summary>
    public bool HasChatTemplate => Model.Chat.HasTemplate;

    /// <summary>
    /// A request whose prompt is the conversation <paramref name="messages"/> (OpenAI-style objects
    /// with <c>role</c> and <c>content</c>) rendered by the model's chat template, the assistant's turn
    /// opened; <paramref name="templateVariables"/> (for example <c>tools</c>) reach the template too.
    /// Throws <see cref="ArgumentException"/> with the template's message when the template refuses the chat.
    /// </summary>
    public GenerationRequest CreateChatRequest(System.Text.Json.Nodes.JsonArray messages, System.Text.Json.Nodes.JsonObject? templateVariables = null)
    {
        var prompt = Model.Chat.Format(messages, templateVariables);
        return new GenerationRequest { Prompt = prompt.Text, AddSpecialTokens = prompt.AddSpecialTokens };
    }

    /// <summary>Requests admitted but not yet tokenized.</summary>
    public int QueueDepth => _pipeline.QueueDepth;

    internal LoadedModel Model { get; }
    internal KvMemoryAccount KvMemory { get; } = new();
    /// <summary>The KV memory requests reserve at admission; like <see cref="KvMemory"/>, it outlives a restarted pipeline.</summary>
    internal KvBudget KvBudget { get; }
    internal PipelineCounters Counters => _pipeline.Counters;
    internal Inference.Runtime.KvArrayShelf KvShelf => _pipeline.KvShelf;
    internal Task<ActorFault> CurrentFault => _pipeline.Faulted;

    /// <summary>Loads the model named by the options (the embedded one by default) and starts the actors.</summary>
    public static PipelineHost Start(PipelineHostOptions? options = null)
    {
        options ??= new PipelineHostOptions();
        if (options.ContextLength is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"context length must be at least 1; got {options.ContextLength}");
        if (options.KvBudgetBytes is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"the KV budget must be at least 1 byte; got {options.KvBudgetBytes}");
        var model = LoadedModel.Load(options.ModelPath ?? LoadedModel.EmbeddedModelDirectory,
            new RunnerOptions { IntraOpThreads = options.IntraOpThreads, UseCuda = options.UseCuda, MaxContext = options.ContextLength, Quantize = options.Quantize, Shapes = options.Shapes, ResidentKv = options.ResidentKv, Attention = options.Attention, IntraOpSpinning = options.IntraOpSpinning, CudaGraph = options.CudaGraph, SerialPrefill = options.SerialPrefill }, options.CacheDirectory);
        return new PipelineHost(model, ownsModel: true, options);
    }

    /// <summary>Starts actors over a model that the caller keeps owning (several hosts may share it).</summary>
    internal static PipelineHost Start(LoadedModel model, PipelineHostOptions? options = null)
        => new(model, ownsModel: false, options ?? new PipelineHostOptions());

    /// <summary>Streams the tokens of one generation as they are sampled.</summary>
    public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var handle = await SubmitAsync(request, cancellation);
        try
        {
            await foreach (var e in handle.Events.ReadAllAsync(CancellationToken.None))
                yield return e;
        }
        finally
        {
            // A caller that stops reading early no longer wants the rest: free its sequence.
            if (!handle.Result.IsCompleted) handle.Cancel();
        }
    }

    /// <summary>Runs one generation to its end.</summary>
    public async Task<GenerationResult> CompleteAsync(GenerationRequest request, CancellationToken cancellation = default)
    {
        var handle = await SubmitAsync(request, cancellation);
        return await handle.Result;
    }

    /// <summary>Admits a request and returns its handle at once (tests read events and result separately).</summary>
    internal RequestHandle Submit(GenerationRequest request, CancellationToken cancellation)
        => SubmitAsync(request, cancellation).GetAwaiter().GetResult();

    /// <summary>
    /// Admits one generation and hands back both its token stream and its final result. Throws
    /// <see cref="PipelineBusyException"/> at once when the host rejects on a full queue.
    /// </summary>
    public async Task<GenerationStream> StartAsync(GenerationRequest request, CancellationToken cancellation = default)
        => new(await SubmitAsync(request, cancellation));

    private async Task<RequestHandle> SubmitAsync(GenerationRequest request, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        if (_draining) throw new PipelineUnavailableException("the host is draining: it finishes the requests it has and takes no new ones");
        if (_faultReason is { } reason) throw new PipelineUnavailableException($"the pipeline is unavailable: {reason}");
        var pipeline = _pipeline;
        var handle = new RequestHandle(CancellationTokenSource.CreateLinkedTokenSource(cancellation, _stopping.Token));
        var admitted = new AdmittedRequest(Interlocked.Increment(ref _nextId), request, request.Seed ?? SeedSource.NewSeed(), handle, Stopwatch.GetTimestamp());
        try
        {
            if (_options.RejectWhenFull)
            {
                if (!pipeline.TrySubmit(admitted, handle.Cancellation))
                    throw pipeline.IsClosed ? Unavailable() : new PipelineBusyException(_options.AdmissionCapacity);
            }
            else
            {
                await pipeline.SubmitAsync(admitted, handle.Cancellation);
            }
        }
        catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException && pipeline.IsClosed)
        {
            handle.Abandon();
            throw Unavailable();
        }
        catch
        {
            handle.Abandon();
            throw;
        }
        return handle;
    }

    private PipelineUnavailableException Unavailable() => _draining
        ? new PipelineUnavailableException("the host is draining: it finishes the requests it has and takes no new ones")
        : new PipelineUnavailableException($"the pipeline is unavailable: {_faultReason ?? "it has stopped"}");

    /// <summary>Stops admitting, cancels what is running, and waits for every actor to stop.</summary>
    public async ValueTask DisposeAsync()
    {
        ActorPipeline pipeline;
        Task supervising;
        lock (_gate)
        {
            if (_stopping.IsCancellationRequested) return;
            _stopping.Cancel();
            pipeline = _pipeline;
            supervising = _supervising;
        }
        // A faulted pipeline has stopped already (its actors observed the abort); this never waits on a dead actor.
        await pipeline.DisposeAsync();
        // If it faulted, its supervision is failing what it held: wait for that (it restarts nothing now).
        if (pipeline.Faulted.IsCompleted) await supervising;
        if (_ownsModel) Model.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Stops admitting (new requests get <see cref="PipelineUnavailableException"/>) and lets every admitted request finish, then stops.</summary>
    public async Task DrainAsync()
    {
        ActorPipeline pipeline;
        lock (_gate)
        {
            _draining = true;
            pipeline = _pipeline;
        }
        pipeline.Shutdown();
        await pipeline.Completion;
    }
}
