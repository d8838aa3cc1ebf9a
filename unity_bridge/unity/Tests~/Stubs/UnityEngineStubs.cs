// Minimal stand-ins for the UnityEngine types the package uses, so that Runtime/ and Samples~/
// compile with mono's mcs outside Unity (Tests~/ is ignored by Unity's importer). They model
// nothing beyond what the tests need.
using System;
using System.Collections.Generic;

namespace UnityEngine
{
    public class Object { public string name = ""; }

    public class Component : Object
    {
        public GameObject gameObject;
        Transform _transform;
        public Transform transform { get { return _transform ?? (_transform = this as Transform ?? new Transform()); } }
        public T GetComponent<T>() where T : class { return gameObject == null ? null : gameObject.GetComponent<T>(); }
        public T[] GetComponentsInChildren<T>() where T : class { return gameObject == null ? new T[0] : gameObject.GetComponentsInChildren<T>(); }
    }

    public class Behaviour : Component { public bool enabled = true; }
    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        public readonly List<Component> Components = new List<Component>();
        public bool activeSelf = true;
        public void SetActive(bool value) { activeSelf = value; }
        public T GetComponent<T>() where T : class
        {
            foreach (var c in Components) { var t = c as T; if (t != null) return t; }
            return null;
        }
        public T[] GetComponentsInChildren<T>() where T : class
        {
            var l = new List<T>();
            foreach (var c in Components) { var t = c as T; if (t != null) l.Add(t); }
            return l.ToArray();
        }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 one { get { return new Vector3(1, 1, 1); } }
        public static Vector3 operator *(Vector3 a, float d) { return new Vector3(a.x * d, a.y * d, a.z * d); }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return new Vector3(a.x + b.x, a.y + b.y, a.z + b.z); }
    }

    public sealed class Transform : Component
    {
        public Vector3 localScale = Vector3.one, position, localPosition, forward = new Vector3(0, 0, 1);
    }

    public struct Color
    {
        public float r, g, b, a;
        public Color(float r, float g, float b) { this.r = r; this.g = g; this.b = b; a = 1; }
        public static Color gray { get { return new Color(0.5f, 0.5f, 0.5f); } }
        public static Color Lerp(Color x, Color y, float t) { return new Color(x.r + (y.r - x.r) * t, x.g + (y.g - x.g) * t, x.b + (y.b - x.b) * t); }
    }

    public sealed class Material : Object { public Color color; }
    public class Renderer : Component { public Material material = new Material(); }
    public sealed class AudioClip : Object { }
    public sealed class AudioSource : Behaviour
    {
        public AudioClip clip;
        public float volume = 1;
        public bool isPlaying;
        public void Play() { isPlaying = true; }
        public void Stop() { isPlaying = false; }
    }
    public sealed class Animator : Behaviour { public void SetInteger(string name, int value) { } }

    public static class Debug
    {
        public static readonly List<string> Lines = new List<string>();
        public static void Log(object m) { Lines.Add("log: " + m); }
        public static void LogWarning(object m) { Lines.Add("warning: " + m); }
        public static void LogError(object m) { Lines.Add("error: " + m); }
    }

    public static class Time
    {
        static readonly System.Diagnostics.Stopwatch Clock = System.Diagnostics.Stopwatch.StartNew();
        public static double realtimeSinceStartupAsDouble { get { return Clock.Elapsed.TotalSeconds; } }
        public static float unscaledTime { get { return (float)Clock.Elapsed.TotalSeconds; } }
    }

    public static class Mathf
    {
        public static int Clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
        public static float Lerp(float a, float b, float t) { t = t < 0 ? 0 : t > 1 ? 1 : t; return a + (b - a) * t; }
        public static int RoundToInt(float f) { return (int)Math.Round(f); }
        public static float Abs(float f) { return Math.Abs(f); }
    }

    [AttributeUsage(AttributeTargets.Field)] public sealed class HeaderAttribute : Attribute { public HeaderAttribute(string h) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class TooltipAttribute : Attribute { public TooltipAttribute(string t) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class RangeAttribute : Attribute { public RangeAttribute(float a, float b) { } }
    [AttributeUsage(AttributeTargets.Field)] public sealed class SerializeField : Attribute { }
    [AttributeUsage(AttributeTargets.Class)] public sealed class DisallowMultipleComponent : Attribute { }
    [AttributeUsage(AttributeTargets.Class)] public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string m) { } }
}

namespace UnityEngine.Events
{
    public delegate void UnityAction();
    public delegate void UnityAction<T0>(T0 arg);

    public class UnityEvent
    {
        readonly List<UnityAction> _l = new List<UnityAction>();
        public void AddListener(UnityAction a) { _l.Add(a); }
        public void Invoke() { foreach (var a in _l) a(); }
    }

    public class UnityEvent<T0>
    {
        readonly List<UnityAction<T0>> _l = new List<UnityAction<T0>>();
        public void AddListener(UnityAction<T0> a) { _l.Add(a); }
        public void Invoke(T0 x) { foreach (var a in _l) a(x); }
    }
}

namespace UnityEngine.UI
{
    public class Slider : UnityEngine.MonoBehaviour
    {
        public class SliderEvent : UnityEngine.Events.UnityEvent<float> { }
        public float value, minValue, maxValue = 1;
        public bool wholeNumbers;
        public SliderEvent onValueChanged = new SliderEvent();
    }

    public class Button : UnityEngine.MonoBehaviour
    {
        public class ButtonClickedEvent : UnityEngine.Events.UnityEvent { }
        public ButtonClickedEvent onClick = new ButtonClickedEvent();
    }
}
