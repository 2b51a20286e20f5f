using System.Reflection;
using System.Runtime.CompilerServices;

namespace Pipeline.Integration;

public sealed class NoMutableStaticStateTests
{
    /// <summary>Every assembly built from src/.</summary>
    public static TheoryData<string> ProductAssemblies() => new()
    {
        "Pipeline.Inference", "Pipeline.Actors", "Pipeline.Runtime", "Pipeline.Server", "Pipeline.Extensions.AI", "Pipeline.Benchmarks", "pipeline",
    };

    [Theory]
    [MemberData(nameof(ProductAssemblies))]
    public void No_type_in_the_product_has_a_static_field_that_is_not_readonly(string assemblyName)
    {
        // The CLI is built beside the tests but not referenced by them: load it from its folder.
        var assembly = assemblyName == "pipeline" ? Assembly.LoadFrom(CliTests.CliDll) : Assembly.Load(assemblyName);
        var offenders = MutableStaticFields(assembly.GetTypes());
        Assert.True(offenders.Length == 0, "mutable static fields: " + string.Join(", ", offenders));
    }

    [Fact]
    public void The_check_finds_a_mutable_static_field_when_there_is_one()
    {
        Assert.Equal([$"{typeof(Offender).FullName}.{nameof(Offender.Counter)}"], MutableStaticFields([typeof(Offender), typeof(Innocent)]));
    }

    private static class Offender { public static int Counter = Environment.ProcessorCount; }

    private static class Innocent
    {
        public const int Constant = 1;
        public static readonly int[] Table = [1, 2];
        public static Func<int, int> Square { get; } = x => x * x;
    }

    /// <summary>The check itself: every static field of <paramref name="types"/> that can be assigned after start-up.</summary>
    private static string[] MutableStaticFields(IEnumerable<Type> types) => types
        .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
            .Where(f => !f.IsInitOnly && !f.IsLiteral && !IsCompilerCache(t, f) && !IsProtobufDescriptor(t, f))
            .Select(f => $"{t.FullName}.{f.Name}"))
        .ToArray();

    /// <summary>Lambda caches the C# compiler emits in its own nested classes (write-once, never state).</summary>
    private static bool IsCompilerCache(Type type, FieldInfo field)
        => type.IsDefined(typeof(CompilerGeneratedAttribute)) || field.IsDefined(typeof(CompilerGeneratedAttribute)) || field.Name.StartsWith('<');

    /// <summary>protoc's generated reflection classes assign their file descriptor once, in the static constructor.</summary>
    private static bool IsProtobufDescriptor(Type type, FieldInfo field)
        => field.Name == "descriptor" && field.FieldType.FullName == "Google.Protobuf.Reflection.FileDescriptor" && type.Name.EndsWith("Reflection", StringComparison.Ordinal);
}
