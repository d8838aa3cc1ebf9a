// A tiny test runner: every public static void method of a class marked [TestFixture] whose name
// starts with "Test" runs; the last line printed is "N passed, M failed" and the exit status is 1
// if anything failed. Usage: mono bridge-tests.exe path/to/vectors.json
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;

namespace ExposureCtrl.Bridge.Tests
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TestFixtureAttribute : Attribute { }

    public sealed class AssertionFailed : Exception
    {
        public AssertionFailed(string m) : base(m) { }
    }

    public static class Assert
    {
        public static void True(bool cond, string what)
        {
            if (!cond) throw new AssertionFailed(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionFailed(what + ": expected <" + expected + ">, found <" + actual + ">");
        }

        public static TE Throws<TE>(Action a, string what) where TE : Exception
        {
            try { a(); }
            catch (TE e) { return e; }
            catch (Exception e) { throw new AssertionFailed(what + ": expected " + typeof(TE).Name + ", got " + e.GetType().Name + ": " + e.Message); }
            throw new AssertionFailed(what + ": expected " + typeof(TE).Name + ", nothing thrown");
        }
    }

    public static class TestRunner
    {
        public static string VectorsPath = "";

        public static int Main(string[] args)
        {
            if (args.Length < 1) { Console.Error.WriteLine("usage: bridge-tests.exe VECTORS.json"); return 2; }
            VectorsPath = args[0];
            int passed = 0, failed = 0;
            var fixtures = typeof(TestRunner).Assembly.GetTypes()
                .Where(t => t.GetCustomAttributes(typeof(TestFixtureAttribute), false).Length > 0)
                .OrderBy(t => t.Name);
            foreach (var fixture in fixtures)
            {
                foreach (var m in fixture.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.Name.StartsWith("Test")).OrderBy(m => m.MetadataToken))
                {
                    try
                    {
                        m.Invoke(null, null);
                        passed++;
                        Console.WriteLine("PASS " + fixture.Name + "." + m.Name);
                    }
                    catch (TargetInvocationException e)
                    {
                        failed++;
                        Console.WriteLine("FAIL " + fixture.Name + "." + m.Name + ": " + e.InnerException);
                    }
                }
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }
    }
}
