using System.Runtime.InteropServices;
using Pipeline.Inference.Models.Gguf;

namespace Pipeline.Integration.Gguf;

/// <summary>The GGUF reader on files written by llama.cpp, and on broken copies of them.</summary>
public sealed class GgufFileTests
{
    private static string StoriesGguf => Path.Combine(RepoPaths.Root, "tests", "fixtures", "models", "stories260k", "stories260K-f32.gguf");

    private static string VocabFile(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "gguf-vocab", $"ggml-vocab-{name}.gguf");

    [Fact]
    public void Open_stories260K_reads_its_header_metadata_and_48_tensors()
    {
        using var gguf = GgufFile.Open(StoriesGguf);

        Assert.Equal(3, gguf.Version);
        Assert.Equal("llama", gguf.Architecture);
        Assert.Equal(19, gguf.Metadata.Count);
        Assert.Equal(64, gguf.GetValue("llama.embedding_length").AsInt32());
        Assert.Equal(5, gguf.GetValue("llama.block_count").AsInt32());
        Assert.Equal(4, gguf.GetValue("llama.attention.head_count_kv").AsInt32());
        Assert.Equal(1e-5f, gguf.GetValue("llama.attention.layer_norm_rms_epsilon").AsSingle());
        Assert.Equal(uint.MaxValue, (uint)gguf.GetValue("tokenizer.ggml.padding_token_id").AsInt64());
        Assert.Equal("llama", gguf.GetValue("tokenizer.ggml.model").AsString());
        Assert.Equal(512, gguf.GetValue("tokenizer.ggml.tokens").AsStringArray().Count);
        Assert.Equal(512, gguf.GetValue("tokenizer.ggml.scores").AsSingleArray().Count);
        Assert.Equal([2, 3, 3, 6], gguf.GetValue("tokenizer.ggml.token_type").AsInt32Array()[..4]);
        Assert.Equal("<s>", gguf.GetValue("tokenizer.ggml.tokens").AsStringArray()[1]);

        Assert.Equal(48, gguf.Tensors.Count);
        Assert.Equal(GgufFile.DefaultAlignment, gguf.Alignment);
        Assert.Equal(0, gguf.DataOffset % gguf.Alignment);
        var embedding = gguf.GetTensor("token_embd.weight");
        Assert.Equal([64L, 512L], embedding.Dimensions);
        Assert.Equal(GgmlType.F32, embedding.Type);
        Assert.Equal(64 * 512 * 4, embedding.ByteCount);
        var down = gguf.GetTensor("blk.4.ffn_down.weight");
        Assert.Equal([172L, 64L], down.Dimensions);
        Assert.Equal(gguf.FileLength, gguf.DataOffset + gguf.Tensors.Max(t => t.Offset + t.ByteCount));
        Assert.Null(gguf.FindTensor("no.such.tensor"));
    }

    [Fact]
    public void GetTensorBytes_stories260K_embedding_equals_the_llama2c_checkpoint_floats()
    {
        // Both files come from the same trained weights: llama2.c's legacy header is 7 int32, then
        // the token embedding [512, 64] fp32, which GGUF stores as {64, 512} in the same order.
        byte[] checkpoint = File.ReadAllBytes(Path.Combine(RepoPaths.ModelDir, "stories260K.bin"));
        using var gguf = GgufFile.Open(StoriesGguf);
        var embedding = gguf.GetTensor("token_embd.weight");

        ReadOnlySpan<byte> bytes = gguf.GetTensorBytes(embedding);

        Assert.True(bytes.SequenceEqual(checkpoint.AsSpan(7 * 4, 512 * 64 * 4)));
        using var stream = gguf.OpenTensorStream(embedding);
        var streamed = new byte[embedding.ByteCount];
        stream.ReadExactly(streamed);
        Assert.True(bytes.SequenceEqual(streamed));
        Assert.Equal(MemoryMarshal.Cast<byte, float>(bytes)[70], MemoryMarshal.Cast<byte, float>(gguf.GetTensorBytes(embedding, 70 * 4, 4))[0]);
    }

    [Theory]
    [InlineData("llama-spm", "llama", 32000, 22)]
    [InlineData("phi-3", "llama", 32064, 26)]
    [InlineData("gpt-2", "gpt2", 50257, 16)]
    public void Open_vocabulary_only_files_reads_their_tokenizer_metadata(string name, string model, int tokens, int keys)
    {
        using var gguf = GgufFile.Open(VocabFile(name));

        Assert.Empty(gguf.Tensors);
        Assert.Equal(keys, gguf.Metadata.Count);
        Assert.Equal(model, gguf.GetValue("tokenizer.ggml.model").AsString());
        Assert.Equal(tokens, gguf.GetValue("tokenizer.ggml.tokens").ArrayLength);
        Assert.Equal(GgufValueType.String, gguf.GetValue("tokenizer.ggml.tokens").ElementType);
    }

    [Fact]
    public void Metadata_of_the_wrong_type_or_missing_is_an_error_naming_the_key()
    {
        using var gguf = GgufFile.Open(VocabFile("phi-3"));

        Assert.True(gguf.GetValue("tokenizer.ggml.add_bos_token").AsBool());
        Assert.StartsWith("{{ bos_token }}", gguf.GetValue("tokenizer.chat_template").AsString(), StringComparison.Ordinal);
        var wrongType = Assert.Throws<InvalidDataException>(() => gguf.GetValue("tokenizer.ggml.model").AsInt64());
        Assert.Contains("tokenizer.ggml.model", wrongType.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<InvalidDataException>(() => gguf.GetValue("llama.block_count"));
        Assert.Contains("llama.block_count", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_a_truncated_file_at_any_cut_throws_InvalidDataException()
    {
        byte[] whole = File.ReadAllBytes(StoriesGguf);
        string path = Path.Combine(Path.GetTempPath(), $"truncated-{Guid.NewGuid():N}.gguf");
        try
        {
            // Cuts in the header, the metadata, the tensor infos and the data section.
            foreach (int cut in new[] { 0, 3, 10, 23, 40, 200, 9000, 12000, 13000, whole.Length / 2, whole.Length - 1 })
            {
                File.WriteAllBytes(path, whole[..cut]);
                var error = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());
                Assert.Contains(path, error.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Open_garbage_or_a_corrupted_header_throws_InvalidDataException()
    {
        byte[] whole = File.ReadAllBytes(StoriesGguf);
        string path = Path.Combine(Path.GetTempPath(), $"garbage-{Guid.NewGuid():N}.gguf");
        try
        {
            var random = new Random(7);
            var garbage = new byte[4096];
            random.NextBytes(garbage);
            File.WriteAllBytes(path, garbage);
            Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());

            // "GGUF" then random bytes: a wild version, counts or lengths.
            "GGUF"u8.CopyTo(garbage);
            File.WriteAllBytes(path, garbage);
            Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());

            // The real header with an absurd first key length and an absurd tensor count.
            byte[] corrupt = (byte[])whole.Clone();
            BitConverter.TryWriteBytes(corrupt.AsSpan(24, 8), ulong.MaxValue / 3);
            File.WriteAllBytes(path, corrupt);
            Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());
            corrupt = (byte[])whole.Clone();
            BitConverter.TryWriteBytes(corrupt.AsSpan(8, 8), 1UL << 40);
            File.WriteAllBytes(path, corrupt);
            Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());
            corrupt = (byte[])whole.Clone();
            BitConverter.TryWriteBytes(corrupt.AsSpan(4, 4), 1u);
            File.WriteAllBytes(path, corrupt);
            Assert.Contains("version 1", Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose()).Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Open_a_v2_file_reads_every_metadata_type_a_custom_alignment_and_each_tensor_in_place()
    {
        string path = Path.Combine(Path.GetTempPath(), $"every-type-{Guid.NewGuid():N}.gguf");
        byte[] f32 = [.. Enumerable.Range(0, 6).SelectMany(i => BitConverter.GetBytes(i * 0.5f))];
        byte[] q8 = [.. Enumerable.Range(0, 2 * 34).Select(i => (byte)i)];
        try
        {
            new GgufTestWriter { Version = 2, Alignment = 64 }
                .Add("u8", (byte)200).Add("i8", (sbyte)-7).Add("u16", (ushort)60000).Add("i16", (short)-30000)
                .Add("u32", 4_000_000_000u).Add("i32", -2_000_000_000).Add("f32", 1.5f).Add("bool", true)
                .Add("str", "héllo ▁ 🙂").Add("u64", ulong.MaxValue).Add("i64", long.MinValue).Add("f64", Math.PI)
                .Add("strings", new[] { "a", "", "ccc" }).Add("floats", new[] { -1f, 2.25f }).Add("u16s", new ushort[] { 1, 65535 })
                .Add("nested", new object[] { new[] { 1, 2 }, new[] { 3 } }).Add("empty", Array.Empty<int>())
                .AddTensor("a.weight", [3, 2], (uint)GgmlType.F32, f32)
                .AddTensor("b.weight", [32, 2], (uint)GgmlType.Q8_0, q8)
                .AddTensor("c.mystery", [4], 99, new byte[4])
                .Write(path);

            using var gguf = GgufFile.Open(path);

            Assert.Equal(2, gguf.Version);
            Assert.Equal(64, gguf.Alignment);
            Assert.Equal(0, gguf.DataOffset % 64);
            Assert.Equal((byte)200, gguf.GetValue("u8").Value);
            Assert.Equal(-7, gguf.GetValue("i8").AsInt32());
            Assert.Equal(60000, gguf.GetValue("u16").AsInt32());
            Assert.Equal(-30000, gguf.GetValue("i16").AsInt64());
            Assert.Equal(4_000_000_000L, gguf.GetValue("u32").AsInt64());
            Assert.Throws<InvalidDataException>(() => gguf.GetValue("u32").AsInt32());
            Assert.Equal(-2_000_000_000, gguf.GetValue("i32").AsInt32());
            Assert.Equal(1.5f, gguf.GetValue("f32").AsSingle());
            Assert.True(gguf.GetValue("bool").AsBool());
            Assert.Equal("héllo ▁ 🙂", gguf.GetValue("str").AsString());
            Assert.Equal(ulong.MaxValue, gguf.GetValue("u64").Value);
            Assert.Throws<InvalidDataException>(() => gguf.GetValue("u64").AsInt64());
            Assert.Equal(long.MinValue, gguf.GetValue("i64").AsInt64());
            Assert.Equal(Math.PI, gguf.GetValue("f64").AsDouble());
            Assert.Equal(["a", "", "ccc"], gguf.GetValue("strings").AsStringArray());
            Assert.Equal([-1f, 2.25f], gguf.GetValue("floats").AsSingleArray());
            Assert.Equal([1, 65535], gguf.GetValue("u16s").AsInt32Array());
            var nested = Assert.IsType<GgufValue[]>(gguf.GetValue("nested").Value);
            Assert.Equal([3], nested[1].AsInt32Array());
            Assert.Equal(0, gguf.GetValue("empty").ArrayLength);

            var a = gguf.GetTensor("a.weight");
            var b = gguf.GetTensor("b.weight");
            Assert.Equal((0L, 24L, 6L), (a.Offset, a.ByteCount, a.ElementCount));
            Assert.Equal((64L, 68L, GgmlType.Q8_0), (b.Offset, b.ByteCount, b.Type));
            Assert.True(gguf.GetTensorBytes(a).SequenceEqual(f32));
            Assert.True(gguf.GetTensorBytes(b).SequenceEqual(q8));
            var mystery = gguf.GetTensor("c.mystery");
            Assert.False(mystery.IsKnownType);
            Assert.Contains("99", Assert.Throws<NotSupportedException>(() => gguf.GetTensorBytes(mystery).Length).Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Open_a_file_whose_tensor_rows_do_not_fill_their_blocks_names_the_tensor()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bad-block-{Guid.NewGuid():N}.gguf");
        try
        {
            new GgufTestWriter().AddTensor("odd.weight", [30, 2], (uint)GgmlType.Q8_0, new byte[68]).Write(path);

            var error = Assert.Throws<InvalidDataException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains("odd.weight", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Tensor_bytes_after_Dispose_throw_ObjectDisposedException()
    {
        var gguf = GgufFile.Open(StoriesGguf);
        var tensor = gguf.GetTensor("output_norm.weight");
        gguf.Dispose();

        Assert.Throws<ObjectDisposedException>(() => gguf.GetTensorBytes(tensor).Length);
    }
}
