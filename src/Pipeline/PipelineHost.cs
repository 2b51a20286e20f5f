using System.Diagnostics;
using System.Runtime.CompilerServices;
using Pipeline.Actors;
using Pipeline.Wiring;
using Pipeline.Inference.Runtime;
using Pipeline.Inference.Sampling;

namespace Pipeline;

/// <summary>
/// Runs many concurrent generations on one loaded model. Thread-safe: call
/// <see cref="GenerateAsync"/> and <see cref="CompleteAsync"/> from anywhere.
/// </summary>
public sealed class PipelineHost : IAsyncDisposable
{
    private readonly ActorPipeline _pipeline;
    private readonly PipelineHostOptions _options;
    private readonly CancellationTokenSource _stopping = new();
    private readonly bool _ownsModel;
    private long _nextId;

    private PipelineHost(LoadedModel model, bool ownsModel, PipelineHostOptions options)
    {
        _options = options;
        _ownsModel = ownsModel;
        Model = model;
        var settings = options.Settings ?? new PipelineSettings { MaxBatch = options.MaxBatch }.WithAllCapacities(options.ChannelCapacity) with
        {
            AdmissionCapacity = options.AdmissionCapacity,
            TokenizeParallelism = options.TokenizeParallelism,
            StepCapacity = Math.Min(options.ChannelCapacity, 2),
        };
        if (options.Hook is { } hook) settings = settings with { Hook = hook };
        _pipeline = new ActorPipeline(model, settings, KvMemory);
    }

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
    internal PipelineCounters Counters => _pipeline.Counters;

    /// <summary>Loads the model named by the options (the embedded one by default) and starts the actors.</summary>
    public static PipelineHost Start(PipelineHostOptions? options = null)
    {
        options ??= new PipelineHostOptions();
        if (options.ContextLength is < 1)
            throw new ArgumentOutOfRangeException(nameof(options), $"context length must be at least 1; got {options.ContextLength}");
        var model = LoadedModel.Load(options.ModelPath ?? LoadedModel.EmbeddedModelDirectory,
            new RunnerOptions { IntraOpThreads = options.IntraOpThreads, UseCuda = options.UseCuda, MaxContext = options.ContextLength }, options.CacheDirectory);
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
        var handle = new RequestHandle(CancellationTokenSource.CreateLinkedTokenSource(cancellation, _stopping.Token));
        var admitted = new AdmittedRequest(Interlocked.Increment(ref _nextId), request, request.Seed ?? SeedSource.NewSeed(), handle, Stopwatch.GetTimestamp());
        try
        {
            if (_options.RejectWhenFull)
            {
                if (!_pipeline.TrySubmit(admitted, handle.Cancellation)) throw new PipelineBusyException(_options.AdmissionCapacity);
            }
            else
            {
                await _pipeline.SubmitAsync(admitted, handle.Cancellation);
            }
        }
        catch
        {
            handle.Abandon();
            throw;
        }
        return handle;
    }

    /// <summary>Stops admitting, cancels what is running, and waits for every actor to stop.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        await _pipeline.DisposeAsync();
        if (_ownsModel) Model.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Stops admitting and lets every admitted request finish, then stops.</summary>
    public async Task DrainAsync()
    {
        _pipeline.Shutdown();
        await _pipeline.Completion;
    }
}
