using Pipeline.Inference.Tokenization;
using Pipeline.Inference.Tokenization.Gguf;
using Pipeline.Inference.Tokenization.HuggingFace;

namespace Pipeline.Integration.Tokenizers;

/// <summary>Finding a model's tokenizer from a folder or a file.</summary>
public sealed class TokenizerSourceTests
{
    [Fact]
    public void Load_of_a_folder_with_tokenizer_json_gives_the_hugging_face_tokenizer_and_its_template()
    {
        var source = TokenizerSource.Load(TokenizerFixtures.TokenizerFolder("qwen3"));

        Assert.IsType<HuggingFaceTokenizer>(source.Tokenizer);
        Assert.Equal("tokenizer.json", source.Kind);
        Assert.Contains("<|im_start|>", source.ChatTemplate, StringComparison.Ordinal);
        Assert.Equal((null, "<|im_end|>"), (source.BosToken, source.EosToken));
        Assert.Equal([9707, 11, 1879, 0], source.Tokenizer.Encode("Hello, world!", addSpecial: true));
    }

    [Fact]
    public void Load_of_a_gguf_file_or_a_folder_holding_one_gives_the_gguf_tokenizer()
    {
        var fromFile = TokenizerSource.Load(TokenizerFixtures.VocabFile("phi-3"));
        string folder = Directory.CreateTempSubdirectory("gguf-model-").FullName;
        try
        {
            File.Copy(TokenizerFixtures.StoriesGguf, Path.Combine(folder, "model.gguf"));
            var fromFolder = TokenizerSource.Load(folder);

            Assert.IsType<GgufTokenizer>(fromFile.Tokenizer);
            Assert.Equal("gguf:llama", fromFile.Kind);
            Assert.NotNull(fromFile.ChatTemplate);
            Assert.Equal("gguf:llama", fromFolder.Kind);
            Assert.Equal(512, fromFolder.Tokenizer.VocabSize);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Load_of_a_bare_tokenizer_json_takes_the_usual_end_tokens_among_its_special_ones()
    {
        string folder = Directory.CreateTempSubdirectory("bare-tokenizer-").FullName;
        try
        {
            File.Copy(Path.Combine(TokenizerFixtures.TokenizerFolder("qwen3"), "tokenizer.json"), Path.Combine(folder, "tokenizer.json"));
            var source = TokenizerSource.Load(folder);

            Assert.Null(source.ChatTemplate);
            Assert.Equal([151643, 151645], source.Tokenizer.EndIds); // <|endoftext|>, <|im_end|>
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Load_of_a_llama2c_folder_gives_its_tok512_tokenizer()
    {
        var source = TokenizerSource.Load(RepoPaths.ModelDir);

        Assert.Equal("llama2.c", source.Kind);
        Assert.IsType<Tokenizer>(source.Tokenizer);
        Assert.Equal([1, 403, 407, 261, 378], source.Tokenizer.Encode("Once upon a time", addSpecial: true));
    }

    [Fact]
    public void Load_of_a_folder_without_a_tokenizer_says_what_it_looked_for()
    {
        string folder = Directory.CreateTempSubdirectory("empty-model-").FullName;
        try
        {
            var error = Assert.Throws<FileNotFoundException>(() => TokenizerSource.Load(folder));
            Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
            Assert.Contains(".gguf", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
