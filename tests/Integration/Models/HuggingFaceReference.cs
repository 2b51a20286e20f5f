namespace Pipeline.Integration.Models;

/// <summary>
/// An independent forward pass with transformers' semantics, written as plain loops in double:
/// the weights as Hugging Face stores them (q/k in rotate-half order, rotated as
/// <c>apply_rotary_pos_emb</c> does), biases, per-head q/k RMSNorm, GQA, RoPE theta and the
/// llama3/linear frequency scaling. It shares no code with the loader or the ONNX graph.
/// </summary>
internal sealed class HuggingFaceReference(TinyModel model, bool interleavedRope = false, double? llama3Factor = null, double lowFreq = 1, double highFreq = 4, int originalContext = 8192, double? linearFactor = null)
{
    private readonly List<double[]>[] _keys = Enumerable.Range(0, model.Spec.Layers).Select(_ => new List<double[]>()).ToArray();
    private readonly List<double[]>[] _values = Enumerable.Range(0, model.Spec.Layers).Select(_ => new List<double[]>()).ToArray();

    /// <summary>Feeds the next token; returns the logits for the position it occupies.</summary>
    public double[] Next(int token)
    {
        var s = model.Spec;
        int d = s.Dim, hd = s.Hd, pos = _keys[0].Count;
        var x = Row(model["model.embed_tokens.weight"], token, d);
        for (int l = 0; l < s.Layers; l++)
        {
            string P(string n) => $"model.layers.{l}.{n}";
            var h = RmsNorm(x, model[P("input_layernorm.weight")], s.Eps);
            var q = MatVec(model[P("self_attn.q_proj.weight")], h, s.Heads * hd);
            var k = MatVec(model[P("self_attn.k_proj.weight")], h, s.KvHeads * hd);
            var v = MatVec(model[P("self_attn.v_proj.weight")], h, s.KvHeads * hd);
            if (s.Biases)
            {
                AddInPlace(q, model[P("self_attn.q_proj.bias")]);
                AddInPlace(k, model[P("self_attn.k_proj.bias")]);
                AddInPlace(v, model[P("self_attn.v_proj.bias")]);
            }
            for (int head = 0; head < s.Heads; head++)
            {
                if (s.QkNorm) NormHead(q, head, hd, model[P("self_attn.q_norm.weight")], s.Eps);
                Rotate(q, head, hd, pos);
            }
            for (int head = 0; head < s.KvHeads; head++)
            {
                if (s.QkNorm) NormHead(k, head, hd, model[P("self_attn.k_norm.weight")], s.Eps);
                Rotate(k, head, hd, pos);
            }
            _keys[l].Add(k);
            _values[l].Add(v);

            var attention = new double[s.Heads * hd];
            int group = s.Heads / s.KvHeads;
            for (int head = 0; head < s.Heads; head++)
            {
                int kvHead = head / group;
                var scores = new double[pos + 1];
                for (int t = 0; t <= pos; t++)
                {
                    double dot = 0;
                    for (int i = 0; i < hd; i++) dot += q[head * hd + i] * _keys[l][t][kvHead * hd + i];
                    scores[t] = dot / Math.Sqrt(hd);
                }
                double max = scores.Max(), sum = 0;
                for (int t = 0; t <= pos; t++) { scores[t] = Math.Exp(scores[t] - max); sum += scores[t]; }
                for (int t = 0; t <= pos; t++)
                    for (int i = 0; i < hd; i++) attention[head * hd + i] += scores[t] / sum * _values[l][t][kvHead * hd + i];
            }
            AddInPlace(x, MatVec(model[P("self_attn.o_proj.weight")], attention, d));

            var h2 = RmsNorm(x, model[P("post_attention_layernorm.weight")], s.Eps);
            var gate = MatVec(model[P("mlp.gate_proj.weight")], h2, s.Hidden);
            var up = MatVec(model[P("mlp.up_proj.weight")], h2, s.Hidden);
            for (int i = 0; i < gate.Length; i++) gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
            AddInPlace(x, MatVec(model[P("mlp.down_proj.weight")], gate, d));
        }
        var final = RmsNorm(x, model["model.norm.weight"], s.Eps);
        return MatVec(s.Tied ? model["model.embed_tokens.weight"] : model["lm_head.weight"], final, s.Vocab);
    }

    /// <summary>transformers' rotate_half: (x1, x2) = halves; x·cos + (−x2, x1)·sin. With interleavedRope, pairs (2i, 2i+1) instead (the wrong layout, for sensitivity checks).</summary>
    private void Rotate(double[] v, int head, int hd, int pos)
    {
        int half = hd / 2, o = head * hd;
        for (int i = 0; i < half; i++)
        {
            double angle = pos * InverseFrequency(i, hd);
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            int a = interleavedRope ? o + 2 * i : o + i, b = interleavedRope ? o + 2 * i + 1 : o + i + half;
            double x1 = v[a], x2 = v[b];
            v[a] = x1 * cos - x2 * sin;
            v[b] = x2 * cos + x1 * sin;
        }
    }

    private double InverseFrequency(int i, int hd)
    {
        double f = 1.0 / Math.Pow(model.Spec.RopeTheta, 2.0 * i / hd);
        if (linearFactor is double linear) return f / linear;
        if (llama3Factor is not double factor) return f;
        double wavelen = 2 * Math.PI / f;
        double lowWavelen = originalContext / lowFreq, highWavelen = originalContext / highFreq;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / factor;
        double smooth = (originalContext / wavelen - lowFreq) / (highFreq - lowFreq);
        return (1 - smooth) * f / factor + smooth * f;
    }

    private static void NormHead(double[] v, int head, int hd, float[] weight, float eps)
    {
        double ms = 0;
        for (int i = 0; i < hd; i++) ms += v[head * hd + i] * v[head * hd + i];
        double inv = 1 / Math.Sqrt(ms / hd + eps);
        for (int i = 0; i < hd; i++) v[head * hd + i] = v[head * hd + i] * inv * weight[i];
    }

    private static double[] RmsNorm(double[] x, float[] weight, float eps)
    {
        double ms = x.Sum(v => v * v) / x.Length, inv = 1 / Math.Sqrt(ms + eps);
        return x.Select((v, i) => v * inv * weight[i]).ToArray();
    }

    private static double[] Row(float[] m, int row, int cols) => Enumerable.Range(0, cols).Select(c => (double)m[(long)row * cols + c]).ToArray();

    private static double[] MatVec(float[] m, double[] x, int rows)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int c = 0; c < x.Length; c++) sum += m[(long)r * x.Length + c] * x[c];
            y[r] = sum;
        }
        return y;
    }

    private static void AddInPlace(double[] x, double[] y) { for (int i = 0; i < x.Length; i++) x[i] += y[i]; }

    private static void AddInPlace(double[] x, float[] y) { for (int i = 0; i < x.Length; i++) x[i] += y[i]; }
}
