using System.Text;
using BenchmarkDotNet.Attributes;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Benchmarks.Micro;

/// <summary>Encoding and decoding one kilobyte of story text with the stories260K tokenizer (512 pieces).</summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private const string Story =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. " +
        "One day, she saw a big, red ball in the park. She ran to it and kicked it very hard. The ball flew " +
        "over the fence and into the garden of an old man. Lily was scared, but she knocked on his door. ";

    private Tokenizer _tokenizer = null!;
    private string _kilobyte = "";
    private int[] _ids = [];

    [GlobalSetup]
    public void Setup()
    {
        _tokenizer = Tokenizer.Load(Path.Combine(RepoModels.Stories260K, "tok512.bin"));
        var text = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(text.ToString()) < 1024) text.Append(Story);
        _kilobyte = text.ToString()[..1024]; // ASCII, so 1024 chars = 1 KB
        _ids = [.. _tokenizer.Encode(_kilobyte, addSpecial: true)];
    }

    [Benchmark]
    public int EncodeOneKilobyte() => _tokenizer.Encode(_kilobyte, addSpecial: true).Count;

    [Benchmark]
    public int DecodeOneKilobyte() => _tokenizer.Decode(_ids).Length;
}
