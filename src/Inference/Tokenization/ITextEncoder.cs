namespace Pipeline.Inference.Tokenization;

/// <summary>Turns text into token ids; both encoders of this folder must give identical ids.</summary>
internal interface ITextEncoder
{
    IReadOnlyList<int> Encode(string text, bool addBos);
}
