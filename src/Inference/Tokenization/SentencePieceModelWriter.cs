using Google.Protobuf;
using Pipeline.Inference.Tokenization.SentencePieceSchema;

namespace Pipeline.Inference.Tokenization;

/// <summary>
/// Re-expresses a llama2.c vocabulary as a serialized SentencePiece BPE ModelProto, the only
/// input Microsoft.ML.Tokenizers' LlamaTokenizer accepts.
/// </summary>
internal static class SentencePieceModelWriter
{
    // SentencePiece's usual whitespace marker; llama2.c's export replaced it with ' '.
    private const char WhitespaceMarker = '\u2581';

    /// <param name="vocabulary">The llama2.c pieces and scores.</param>
    /// <param name="markWhitespace">
    /// Spell spaces as SentencePiece usually does, '▁' in pieces with escape_whitespaces on. Off in
    /// production: then a '▁' typed in the text is read as a space, where llama2.c byte-falls back.
    /// Kept only so a test can show that divergence.
    /// </param>
    public static byte[] Write(TokenVocabulary vocabulary, bool markWhitespace = false)
    {
        var model = new SpModel
        {
            TrainerSpec = new SpTrainerSpec
            {
                ModelType = SpTrainerSpec.Types.ModelType.Bpe,
                VocabSize = vocabulary.Count,
                ByteFallback = true,
                TreatWhitespaceAsSuffix = false,
                UnkId = TokenVocabulary.UnknownId,
                BosId = TokenVocabulary.BosId,
                EosId = TokenVocabulary.EosId,
                PadId = -1,
                UnkPiece = "<unk>",
                BosPiece = "<s>",
                EosPiece = "</s>",
            },
            // No normalization rules: llama2.c feeds the text through unchanged, except for the
            // dummy-prefix space; and it keeps repeated spaces, hence remove_extra_whitespaces off.
            // Without whitespace escaping the pieces keep llama2.c's real spaces and the dummy
            // prefix is a plain ' ', so no character of the input gets a second meaning.
            NormalizerSpec = new SpNormalizerSpec
            {
                Name = "identity",
                AddDummyPrefix = true,
                RemoveExtraWhitespaces = false,
                EscapeWhitespaces = markWhitespace,
            },
        };

        for (int id = 0; id < vocabulary.Count; id++)
        {
            model.Pieces.Add(ToSentencePiece(vocabulary, id, markWhitespace));
        }

        return model.ToByteArray();
    }

    private static SpModel.Types.SentencePiece ToSentencePiece(TokenVocabulary vocabulary, int id, bool markWhitespace)
    {
        // llama2.c's export renamed <s> and </s> to "\n<s>\n" and "\n</s>\n"; SentencePiece knows
        // them by their usual names, and they only ever enter a sequence by id.
        (string text, SpModel.Types.SentencePiece.Types.Kind kind) = id switch
        {
            TokenVocabulary.UnknownId => ("<unk>", SpModel.Types.SentencePiece.Types.Kind.Unknown),
            TokenVocabulary.BosId => ("<s>", SpModel.Types.SentencePiece.Types.Kind.Control),
            TokenVocabulary.EosId => ("</s>", SpModel.Types.SentencePiece.Types.Kind.Control),
            _ when vocabulary.IsBytePiece(id) => (vocabulary.Piece(id), SpModel.Types.SentencePiece.Types.Kind.Byte),
            _ => (markWhitespace ? vocabulary.Piece(id).Replace(' ', WhitespaceMarker) : vocabulary.Piece(id), SpModel.Types.SentencePiece.Types.Kind.Normal),
        };
        return new SpModel.Types.SentencePiece { Piece = text, Score = vocabulary.Score(id), Type = kind };
    }
}
