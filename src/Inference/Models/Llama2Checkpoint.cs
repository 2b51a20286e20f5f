using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Pipeline.Inference.Models;

/// <summary>
/// Reads and writes llama2.c checkpoints: the legacy (v0) layout, a header of seven int32
/// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
/// means an unshared classifier follows) then the float32 tensors in run.c's order; and the
/// versioned v1 layout ("ak42" magic, version 1, a 256-byte header, fp32 tensors in export.py's order).
/// </summary>
public static unsafe class Llama2Checkpoint
{
    private const int LegacyHeaderBytes = 7 * sizeof(int);
    private const uint VersionedMagic = 0x616b3432; // "ak42"
    private const int VersionedHeaderBytes = 256;

    /// <remarks>The file is mapped, not read into one array, so checkpoints past 2 GB (a 1B model in fp32) load.</remarks>
    public static LlamaWeights Read(string path)
    {
        MemoryMappedFile mapping;
        long length;
        try
        {
            length = new FileInfo(path).Length;
            if (length == 0) return Parse([], path);
            mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FileNotFoundException($"cannot read checkpoint '{path}': {e.Message}", path, e);
        }
        using (mapping)
        using (var view = mapping.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read))
        {
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            try { return Parse(pointer + view.PointerOffset, length, path); }
            finally { view.SafeMemoryMappedViewHandle.ReleasePointer(); }
        }
    }

    /// <summary>Reads only the header of the checkpoint at <paramref name="path"/> (for inspection).</summary>
    public static LlamaConfig ReadConfig(string path)
    {
        var header = new byte[VersionedHeaderBytes];
        int length;
        using (var file = File.OpenRead(path)) length = file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        var bytes = header.AsSpan(0, length);
        if (bytes.Length < LegacyHeaderBytes)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is too short for a llama2.c header");
        LlamaConfig config;
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) == VersionedMagic)
        {
            if (bytes.Length < VersionedHeaderBytes) throw new InvalidDataException($"{path}: too short for a versioned llama2.c header");
            var p = MemoryMarshal.Cast<byte, int>(bytes.Slice(8, 7 * sizeof(int)));
            config = new LlamaConfig(p[0], p[1], p[2], p[3], p[4], p[5], p[6], bytes[8 + 7 * sizeof(int)] != 0);
        }
        else
        {
            var h = MemoryMarshal.Cast<byte, int>(bytes[..LegacyHeaderBytes]);
            config = new LlamaConfig(h[0], h[1], h[2], h[3], h[4], Math.Abs(h[5]), h[6], h[5] > 0);
        }
        config.Validate();
        return config;
    }

    public static LlamaWeights Parse(ReadOnlySpan<byte> bytes, string nameForErrors = "checkpoint")
    {
        fixed (byte* pointer = bytes) return Parse(pointer, bytes.Length, nameForErrors);
    }

    private static LlamaWeights Parse(byte* data, long length, string nameForErrors)
    {
        if (length < LegacyHeaderBytes)
            throw new InvalidDataException($"{nameForErrors}: {length} bytes is too short for a llama2.c header");
        var header = new ReadOnlySpan<byte>(data, (int)Math.Min(length, VersionedHeaderBytes));
        return BinaryPrimitives.ReadUInt32LittleEndian(header) == VersionedMagic
            ? ParseVersioned(header, new FloatReader(data, length, VersionedHeaderBytes, nameForErrors), nameForErrors)
            : ParseLegacy(header, new FloatReader(data, length, LegacyHeaderBytes, nameForErrors));
    }

    private static LlamaWeights ParseLegacy(ReadOnlySpan<byte> bytes, FloatReader reader)
    {
        var header = MemoryMarshal.Cast<byte, int>(bytes[..LegacyHeaderBytes]);
        bool shared = header[5] > 0;
        var config = new LlamaConfig(header[0], header[1], header[2], header[3], header[4], Math.Abs(header[5]), header[6], shared);
        config.Validate();
        int layers = config.Layers, dim = config.Dim, kv = config.KvDim, hidden = config.HiddenDim;
        var embedding = reader.Take((long)config.VocabSize * dim);
        var rmsAtt = reader.Take((long)layers * dim);
        var wq = reader.Take((long)layers * dim * dim);
        var wk = reader.Take((long)layers * kv * dim);
        var wv = reader.Take((long)layers * kv * dim);
        var wo = reader.Take((long)layers * dim * dim);
        var rmsFfn = reader.Take((long)layers * dim);
        var w1 = reader.Take((long)layers * hidden * dim);
        var w2 = reader.Take((long)layers * dim * hidden);
        var w3 = reader.Take((long)layers * hidden * dim);
        var rmsFinal = reader.Take(dim);
        reader.Skip((long)config.SeqLen * config.HeadDim); // the legacy freq_cis_real and freq_cis_imag tables
        var classifier = shared ? embedding : reader.Take((long)config.VocabSize * dim);
        reader.ExpectEnd();
        return new LlamaWeights
        {
            Config = config, TokenEmbedding = embedding, RmsAttention = rmsAtt, Wq = wq, Wk = wk, Wv = wv, Wo = wo,
            RmsFfn = rmsFfn, W1 = w1, W2 = w2, W3 = w3, RmsFinal = rmsFinal, Classifier = classifier,
        };
    }

    private static LlamaWeights ParseVersioned(ReadOnlySpan<byte> bytes, FloatReader reader, string name)
    {
        if (bytes.Length < VersionedHeaderBytes)
            throw new InvalidDataException($"{name}: too short for a versioned llama2.c header");
        int version = BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        if (version != 1)
            throw new InvalidDataException($"{name}: llama2.c checkpoint version {version} is not supported (only fp32 version 1 and the legacy format)");
        var p = MemoryMarshal.Cast<byte, int>(bytes.Slice(8, 7 * sizeof(int)));
        bool shared = bytes[8 + 7 * sizeof(int)] != 0;
        var config = new LlamaConfig(p[0], p[1], p[2], p[3], p[4], p[5], p[6], shared);
        config.Validate();
        int layers = config.Layers, dim = config.Dim, kv = config.KvDim, hidden = config.HiddenDim;
        // export.py's legacy_export v1 order: norms first, then embedding, then per-kind stacks.
        var rmsAtt = reader.Take((long)layers * dim);
        var rmsFfn = reader.Take((long)layers * dim);
        var rmsFinal = reader.Take(dim);
        var embedding = reader.Take((long)config.VocabSize * dim);
        var wq = reader.Take((long)layers * dim * dim);
        var wk = reader.Take((long)layers * kv * dim);
        var wv = reader.Take((long)layers * kv * dim);
        var wo = reader.Take((long)layers * dim * dim);
        var w1 = reader.Take((long)layers * hidden * dim);
        var w2 = reader.Take((long)layers * dim * hidden);
        var w3 = reader.Take((long)layers * hidden * dim);
        var classifier = shared ? embedding : reader.Take((long)config.VocabSize * dim);
        reader.ExpectEnd();
        return new LlamaWeights
        {
            Config = config, TokenEmbedding = embedding, RmsAttention = rmsAtt, Wq = wq, Wk = wk, Wv = wv, Wo = wo,
            RmsFfn = rmsFfn, W1 = w1, W2 = w2, W3 = w3, RmsFinal = rmsFinal, Classifier = classifier,
        };
    }

    /// <summary>Writes weights in the legacy layout that run.c reads.</summary>
    public static void WriteLegacy(LlamaWeights w, Stream output)
    {
        var c = w.Config;
        Span<int> header = [c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.SharedClassifier ? c.VocabSize : -c.VocabSize, c.SeqLen];
        output.Write(MemoryMarshal.AsBytes(header));
        foreach (var t in new[] { w.TokenEmbedding, w.RmsAttention, w.Wq, w.Wk, w.Wv, w.Wo, w.RmsFfn, w.W1, w.W2, w.W3, w.RmsFinal })
            output.Write(MemoryMarshal.AsBytes(t.AsSpan()));
        output.Write(new byte[(long)c.SeqLen * c.HeadDim * sizeof(float)]);
        if (!c.SharedClassifier) output.Write(MemoryMarshal.AsBytes(w.Classifier.AsSpan()));
    }

    /// <summary>Float tensors one after another from <c>data[start..length]</c> (a mapped file or a pinned span).</summary>
    private ref struct FloatReader(byte* data, long length, long start, string name)
    {
        private long _at = Math.Min(start, length);

        private readonly long Rest => length - _at;

        public float[] Take(long count)
        {
            long need = count * sizeof(float);
            if (need > Rest)
                throw new InvalidDataException($"{name}: truncated; the header promises more weights than the file holds");
            if (count > Array.MaxLength)
                throw new InvalidDataException($"{name}: a tensor of {count} floats is larger than one array can hold");
            var result = new float[count];
            // In chunks: a span's length is an int, and a stacked tensor of a larger model passes 2 GB.
            const int Chunk = 1 << 28;
            for (long done = 0; done < count; done += Chunk)
            {
                int n = (int)Math.Min(Chunk, count - done);
                new ReadOnlySpan<float>(data + _at + done * sizeof(float), n).CopyTo(result.AsSpan((int)done, n));
            }
            _at += need;
            return result;
        }

        public void Skip(long count) => _at += Math.Min(count * sizeof(float), Rest);

        public readonly void ExpectEnd()
        {
            if (Rest != 0 && Rest % sizeof(float) != 0)
                throw new InvalidDataException($"{name}: {Rest} trailing bytes after the weights");
        }
    }
}
