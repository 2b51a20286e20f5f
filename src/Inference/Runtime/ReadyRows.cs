namespace Pipeline.Inference.Runtime;

/// <summary>
/// Rows of a decode step whose logits have landed (<see cref="DecoderModel.Step(IReadOnlyList{SequenceStep}, StepWorkspace, float[], Action{ReadyRows})"/>):
/// <see cref="Rows"/>[i], an index into the step's rows, has its logits at row <see cref="LogitRows"/>[i]
/// of <see cref="Logits"/> ([n, vocab]). Valid until the workspace's next step.
/// </summary>
public readonly record struct ReadyRows(int[] Rows, Memory<float> Logits, int[] LogitRows);
