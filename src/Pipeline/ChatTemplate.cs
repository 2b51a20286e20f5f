namespace Pipeline;

/// <summary>
/// How a chat (a list of role-tagged messages) becomes one prompt for the model. The embedded
/// stories260K model was trained on plain stories and has never seen role markup, so the
/// template drops roles: the prompt is every message's content, in order, joined by a newline.
/// A chat of one user message is therefore the same request as a completion of its text.
/// Both the HTTP server and the IChatClient use this one template.
/// </summary>
internal static class ChatTemplate
{
    public static string Render(IEnumerable<(string Role, string Content)> messages)
        => string.Join('\n', messages.Select(m => m.Content));
}
