using Pipeline.Properties;
using Xunit.Abstractions;

// usage: Pipeline.LongRun P1|P2|P3|P7|P6|P6q8|P6q4|P6qwen3|P6llama3, or probe|shapeclasses|P6cuda|P1cuda|P1graph|residentcuda|residentgraph|residentsolo MODEL [SHAPES] (P6cpu|P1cpu|residentcpu on the CPU); the case count comes from PIPELINE_PROPERTY_RUNS (a factor).
//        Pipeline.LongRun probe|P6cuda|P1cuda|residentcuda|P6cpu|P1cpu|residentcpu MODEL [BATCH_SHAPES] : on a model folder (the GPU machine's 110M shape).
var which = args.Length > 0 ? args[0] : "P1";
var output = new ConsoleOutput();
var started = DateTime.UtcNow;
try
{
    switch (which)
    {
        case "P1": new PipelineProperties(output).P1_every_completed_request_has_the_ids_and_logits_of_its_solo_run(); break;
        case "P2": new PipelineProperties(output).P2_every_request_finishes_within_the_bound_for_any_capacities(); break;
        case "P3": new PipelineProperties(output).P3_cancelling_or_failing_any_subset_at_any_stage_leaves_the_rest_unchanged_and_returns_all_kv_memory(); break;
        case "P7": new PipelineProperties(output).P7_under_a_small_kv_budget_every_request_waits_its_turn_and_has_the_ids_and_logits_of_its_solo_run(); break;
        case "P6": new BatchingProperties(output).A_batched_step_gives_each_row_the_logits_and_cache_of_its_solo_step(); break;
        case "P6q8": new BatchingProperties(output).A_batched_step_on_a_weight_quantized_model_gives_each_row_its_solo_logits_and_cache(Pipeline.Inference.Onnx.WeightQuantization.Q8); break;
        case "P6q4": new BatchingProperties(output).A_batched_step_on_a_weight_quantized_model_gives_each_row_its_solo_logits_and_cache(Pipeline.Inference.Onnx.WeightQuantization.Q4); break;
        case "P6qwen3": new BatchingProperties(output).A_batched_step_on_a_qwen3_layout_model_with_per_head_q_k_norms_gives_each_row_its_solo_logits_and_cache(); break;
        case "probe": Pipeline.Properties.Cuda.CudaShapeProbe.Run(args[1], output.WriteLine); break;
        case "shapeclasses": Pipeline.Properties.Cuda.ResidentShapeProbe.Run(args[1], output.WriteLine, cuda: args.Length < 3 || args[2] != "cpu"); break;
        case "P6cuda": Pipeline.Properties.Cuda.CudaProperties.P6(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "P1cuda": Pipeline.Properties.Cuda.CudaProperties.P1(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "P6cpu": Pipeline.Properties.Cuda.CudaProperties.P6(args[1], cuda: false, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "residentsolo": Pipeline.Properties.Cuda.CudaProperties.ResidentSolo(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "residentcuda": Pipeline.Properties.Cuda.CudaProperties.Resident(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "P1graph": Pipeline.Properties.Cuda.CudaProperties.P1(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine, cudaGraph: true); break;
        case "residentgraph": Pipeline.Properties.Cuda.CudaProperties.Resident(args[1], cuda: true, args.Length > 2 ? args[2] : null, output.WriteLine, cudaGraph: true); break;
        case "residentcpu": Pipeline.Properties.Cuda.CudaProperties.Resident(args[1], cuda: false, args.Length > 2 ? args[2] : "decode=4,context", output.WriteLine); break;
        case "P1cpu": Pipeline.Properties.Cuda.CudaProperties.P1(args[1], cuda: false, args.Length > 2 ? args[2] : null, output.WriteLine); break;
        case "P6llama3": new BatchingProperties(output).A_batched_step_on_a_llama3_layout_model_with_scaled_rope_gives_each_row_its_solo_logits_and_cache(); break;
        default: Console.Error.WriteLine($"unknown property {which}"); return 2;
    }
    Console.WriteLine($"{which} PASSED in {(DateTime.UtcNow - started).TotalSeconds:F0} s");
    return 0;
}
catch (Exception e)
{
    Console.WriteLine($"{which} FAILED in {(DateTime.UtcNow - started).TotalSeconds:F0} s: {e.Message}");
    for (var inner = e.InnerException; inner is not null; inner = inner.InnerException) Console.WriteLine($"  because: {inner.GetType().Name}: {inner.Message}");
    return 1;
}

internal sealed class ConsoleOutput : ITestOutputHelper
{
    public void WriteLine(string message) => Console.WriteLine(message);
    public void WriteLine(string format, params object[] args) => Console.WriteLine(format, args);
}
