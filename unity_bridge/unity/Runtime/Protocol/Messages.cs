// Typed messages of PROTOCOL.md v1 and their codec (Pack / Unpack), free of UnityEngine.
//
// Encoding is canonical and byte-identical to the Python codec (checked against vectors.json):
// keys v, type, seq, t, then the type's own keys in the order of PROTOCOL.md; an absent
// optional event value is left out. Decoding is tolerant where the protocol says so (unknown keys
// ignored, ints accepted for floats, float32 accepted) and strict elsewhere; every failure is a
// ProtocolException whose Code is "malformed", "version" or "unknown_type" (ignore, no reply).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace ExposureCtrl.Bridge.Protocol
{
    public sealed class ProtocolException : Exception
    {
        /// <summary>"malformed", "version" or "unknown_type".</summary>
        public readonly string Code;

        public ProtocolException(string code, string message) : base(message) { Code = code; }
    }

    public enum StateValueKind { Text, Integer, Number }

    /// <summary>A scene parameter's value: str (categorical/ordinal) or a number (continuous).</summary>
    public struct StateValue : IEquatable<StateValue>
    {
        public readonly StateValueKind Kind;
        public readonly string Text;
        public readonly long Integer;
        public readonly double Number;

        StateValue(StateValueKind kind, string text, long integer, double number)
        {
            Kind = kind; Text = text; Integer = integer; Number = number;
        }

        public static StateValue Of(string s) { return new StateValue(StateValueKind.Text, s, 0, 0); }
        public static StateValue Of(long i) { return new StateValue(StateValueKind.Integer, null, i, i); }
        public static StateValue Of(double d) { return new StateValue(StateValueKind.Number, null, 0, d); }

        public bool IsText { get { return Kind == StateValueKind.Text; } }

        /// <summary>The value as a number (ints widened); NaN for text.</summary>
        public double AsDouble { get { return Kind == StateValueKind.Text ? double.NaN : Number; } }

        public bool Equals(StateValue o)
        {
            if (Kind != o.Kind) return false;
            switch (Kind)
            {
                case StateValueKind.Text: return Text == o.Text;
                case StateValueKind.Integer: return Integer == o.Integer;
                default: return Number.Equals(o.Number);
            }
        }

        public override bool Equals(object o) { return o is StateValue && Equals((StateValue)o); }

        public override int GetHashCode()
        {
            return Kind == StateValueKind.Text ? (Text ?? "").GetHashCode() : Number.GetHashCode();
        }

        public override string ToString()
        {
            switch (Kind)
            {
                case StateValueKind.Text: return Text;
                case StateValueKind.Integer: return Integer.ToString(CultureInfo.InvariantCulture);
                default: return Number.ToString("R", CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>A complete scene: parameter id → value, in the order received (or added).</summary>
    public sealed class SceneState : IEquatable<SceneState>
    {
        readonly List<KeyValuePair<string, StateValue>> _entries = new List<KeyValuePair<string, StateValue>>();

        public int Count { get { return _entries.Count; } }
        public IEnumerable<KeyValuePair<string, StateValue>> Entries { get { return _entries; } }

        public SceneState Set(string key, StateValue value)
        {
            for (int i = 0; i < _entries.Count; i++)
            {
                if (_entries[i].Key == key) { _entries[i] = new KeyValuePair<string, StateValue>(key, value); return this; }
            }
            _entries.Add(new KeyValuePair<string, StateValue>(key, value));
            return this;
        }

        public SceneState Set(string key, string v) { return Set(key, StateValue.Of(v)); }
        public SceneState Set(string key, long v) { return Set(key, StateValue.Of(v)); }
        public SceneState Set(string key, double v) { return Set(key, StateValue.Of(v)); }

        public bool TryGet(string key, out StateValue value)
        {
            foreach (var kv in _entries)
            {
                if (kv.Key == key) { value = kv.Value; return true; }
            }
            value = default(StateValue);
            return false;
        }

        public bool ContainsKey(string key) { StateValue v; return TryGet(key, out v); }

        public SceneState Copy()
        {
            var s = new SceneState();
            foreach (var kv in _entries) s._entries.Add(kv);
            return s;
        }

        /// <summary>Same keys with equal values (order does not matter).</summary>
        public bool Equals(SceneState o)
        {
            if (o == null || o.Count != Count) return false;
            foreach (var kv in _entries)
            {
                StateValue v;
                if (!o.TryGet(kv.Key, out v) || !v.Equals(kv.Value)) return false;
            }
            return true;
        }

        public override bool Equals(object o) { return Equals(o as SceneState); }
        public override int GetHashCode() { return Count; }

        public override string ToString()
        {
            var sb = new StringBuilder("{");
            foreach (var kv in _entries)
            {
                if (sb.Length > 1) sb.Append(", ");
                sb.Append(kv.Key).Append(": ").Append(kv.Value);
            }
            return sb.Append("}").ToString();
        }
    }

    public abstract class Message
    {
        public const int ProtocolVersion = 1;
        public const int MaxFrameBytes = 65536;

        public long Seq;
        public double T;

        public abstract string Type { get; }

        internal abstract int BodyCount { get; }
        internal abstract void WriteBody(MsgPackWriter w);
    }

    // --- headset -> controller ---

    public sealed class Hello : Message
    {
        public string Client = "";
        public List<string> Parameters = new List<string>();
        public override string Type { get { return "hello"; } }
        internal override int BodyCount { get { return 2; } }
        internal override void WriteBody(MsgPackWriter w)
        {
            w.Write("client"); w.Write(Client);
            w.Write("parameters"); w.WriteArrayHeader(Parameters.Count);
            foreach (var p in Parameters) w.Write(p);
        }
    }

    public sealed class Ack : Message
    {
        public long AckSeq;
        public override string Type { get { return "ack"; } }
        internal override int BodyCount { get { return 1; } }
        internal override void WriteBody(MsgPackWriter w) { w.Write("ack"); w.Write(AckSeq); }
    }

    public sealed class EventMessage : Message
    {
        public string Kind = "";
        /// <summary>null (absent), a long for suds, a bool for gaze, plain data for unknown kinds.</summary>
        public object Value;
        public override string Type { get { return "event"; } }
        internal override int BodyCount { get { return Value == null ? 1 : 2; } }
        internal override void WriteBody(MsgPackWriter w)
        {
            w.Write("kind"); w.Write(Kind);
            if (Value != null) { w.Write("value"); w.WriteObject(Value); }
        }
    }

    public sealed class Heartbeat : Message
    {
        public override string Type { get { return "heartbeat"; } }
        internal override int BodyCount { get { return 0; } }
        internal override void WriteBody(MsgPackWriter w) { }
    }

    public sealed class ByeMessage : Message
    {
        public string Reason = "";
        public override string Type { get { return "bye"; } }
        internal override int BodyCount { get { return 1; } }
        internal override void WriteBody(MsgPackWriter w) { w.Write("reason"); w.Write(Reason); }
    }

    // --- controller -> headset ---

    public sealed class Welcome : Message
    {
        public string Session = "";
        public string Scenario = "";
        public SceneState State = new SceneState();
        public SceneState SafeState = new SceneState();
        public double HeartbeatS = 1.0;
        public double TimeoutS = 3.0;
        public override string Type { get { return "welcome"; } }
        internal override int BodyCount { get { return 6; } }
        internal override void WriteBody(MsgPackWriter w)
        {
            w.Write("session"); w.Write(Session);
            w.Write("scenario"); w.Write(Scenario);
            w.Write("state"); Codec.WriteState(w, State);
            w.Write("safe_state"); Codec.WriteState(w, SafeState);
            w.Write("heartbeat_s"); w.Write(HeartbeatS);
            w.Write("timeout_s"); w.Write(TimeoutS);
        }
    }

    public sealed class SceneMessage : Message
    {
        public SceneState State = new SceneState();
        public double TransitionS;
        public override string Type { get { return "scene"; } }
        internal override int BodyCount { get { return 2; } }
        internal override void WriteBody(MsgPackWriter w)
        {
            w.Write("state"); Codec.WriteState(w, State);
            w.Write("transition_s"); w.Write(TransitionS);
        }
    }

    public sealed class SafeMessage : Message
    {
        public string Reason = "";
        public override string Type { get { return "safe"; } }
        internal override int BodyCount { get { return 1; } }
        internal override void WriteBody(MsgPackWriter w) { w.Write("reason"); w.Write(Reason); }
    }

    public sealed class ErrorMessage : Message
    {
        public string Code = "";
        public string Text = "";
        public override string Type { get { return "error"; } }
        internal override int BodyCount { get { return 2; } }
        internal override void WriteBody(MsgPackWriter w)
        {
            w.Write("code"); w.Write(Code);
            w.Write("message"); w.Write(Text);
        }
    }

    public sealed class EndMessage : Message
    {
        public string Reason = "";
        public override string Type { get { return "end"; } }
        internal override int BodyCount { get { return 1; } }
        internal override void WriteBody(MsgPackWriter w) { w.Write("reason"); w.Write(Reason); }
    }

    public static class Codec
    {
        public static byte[] Pack(Message m)
        {
            var w = new MsgPackWriter();
            w.WriteMapHeader(4 + m.BodyCount);
            w.Write("v"); w.Write((long)Message.ProtocolVersion);
            w.Write("type"); w.Write(m.Type);
            w.Write("seq"); w.Write(m.Seq);
            w.Write("t"); w.Write(m.T);
            m.WriteBody(w);
            var bytes = w.ToArray();
            if (bytes.Length > Message.MaxFrameBytes)
                throw new ProtocolException("malformed", m.Type + ": frame of " + bytes.Length + " bytes exceeds the 65536-byte limit");
            return bytes;
        }

        internal static void WriteState(MsgPackWriter w, SceneState s)
        {
            w.WriteMapHeader(s.Count);
            foreach (var kv in s.Entries)
            {
                w.Write(kv.Key);
                switch (kv.Value.Kind)
                {
                    case StateValueKind.Text: w.Write(kv.Value.Text); break;
                    case StateValueKind.Integer: w.Write(kv.Value.Integer); break;
                    default: w.Write(kv.Value.Number); break;
                }
            }
        }

        public static Message Unpack(byte[] frame)
        {
            if (frame == null || frame.Length == 0) throw Bad("frame: empty (expected one msgpack map)");
            if (frame.Length > Message.MaxFrameBytes)
                throw Bad("frame: " + frame.Length + " bytes exceeds the 65536-byte limit");
            object obj;
            try
            {
                obj = MsgPackReader.ReadSingle(frame);
            }
            catch (MsgPackException e)
            {
                throw Bad("frame: not valid msgpack (" + e.Message + ")");
            }
            return FromMap(obj);
        }

        /// <summary>Validate a decoded object tree (also used with JSON in the tests).</summary>
        public static Message FromMap(object obj)
        {
            var m = obj as MsgPackMap;
            if (m == null) throw Bad("message: expected a map, found " + KindOf(obj));
            foreach (var kv in m.Entries)
            {
                if (!(kv.Key is string)) throw Bad("message: expected str keys, found a " + KindOf(kv.Key) + " key");
            }
            object v;
            if (!m.TryGet("v", out v)) throw Bad("message: missing envelope key 'v'");
            if (!(v is long) && !(v is ulong)) throw Bad("message.v: expected int, found " + KindOf(v));
            if (!(v is long) || (long)v != Message.ProtocolVersion)
                throw new ProtocolException("version", "protocol version " + v + " is not supported (this side speaks 1)");
            foreach (var k in new[] { "type", "seq", "t" })
            {
                object x;
                if (!m.TryGet(k, out x)) throw Bad("message: missing envelope key '" + k + "'");
            }
            string type = Str(m, "message.type", "type");
            long seq = Seq(m, type + ".seq", "seq");
            double t = Float(m, type + ".t", "t", false, false);
            Message msg;
            switch (type)
            {
                case "hello":
                {
                    var h = new Hello { Client = Str(m, "hello.client", "client") };
                    object p = Required(m, "hello", "parameters");
                    var list = p as List<object>;
                    if (list == null) throw Bad("hello.parameters: expected array of str, found " + KindOf(p));
                    for (int i = 0; i < list.Count; i++)
                    {
                        var s = list[i] as string;
                        if (s == null) throw Bad("hello.parameters[" + i + "]: expected str, found " + KindOf(list[i]));
                        h.Parameters.Add(s);
                    }
                    msg = h;
                    break;
                }
                case "ack": msg = new Ack { AckSeq = Seq(m, "ack.ack", "ack") }; break;
                case "event":
                {
                    var e = new EventMessage { Kind = Str(m, "event.kind", "kind") };
                    object value;
                    m.TryGet("value", out value);
                    if (e.Kind == "suds")
                    {
                        if (!(value is long)) throw Bad("event.value: expected int 0..100 for kind suds, found " + KindOf(value));
                        long n = (long)value;
                        if (n < 0 || n > 100) throw Bad("event.value: expected int 0..100 for kind suds, found " + n);
                        e.Value = n;
                    }
                    else if (e.Kind == "gaze")
                    {
                        if (!(value is bool)) throw Bad("event.value: expected bool for kind gaze, found " + KindOf(value));
                        e.Value = value;
                    }
                    else if (e.Kind == "panic" || e.Kind == "removed" || e.Kind == "worn")
                    {
                        e.Value = null;  // never drop a panic for a stray value
                    }
                    else
                    {
                        e.Value = value;
                    }
                    msg = e;
                    break;
                }
                case "heartbeat": msg = new Heartbeat(); break;
                case "bye": msg = new ByeMessage { Reason = Str(m, "bye.reason", "reason") }; break;
                case "welcome":
                    msg = new Welcome
                    {
                        Session = Str(m, "welcome.session", "session"),
                        Scenario = Str(m, "welcome.scenario", "scenario"),
                        State = State(m, "welcome.state", "state"),
                        SafeState = State(m, "welcome.safe_state", "safe_state"),
                        HeartbeatS = Float(m, "welcome.heartbeat_s", "heartbeat_s", true, false),
                        TimeoutS = Float(m, "welcome.timeout_s", "timeout_s", true, false),
                    };
                    break;
                case "scene":
                    msg = new SceneMessage
                    {
                        State = State(m, "scene.state", "state"),
                        TransitionS = Float(m, "scene.transition_s", "transition_s", false, true),
                    };
                    break;
                case "safe": msg = new SafeMessage { Reason = Str(m, "safe.reason", "reason") }; break;
                case "error":
                    msg = new ErrorMessage { Code = Str(m, "error.code", "code"), Text = Str(m, "error.message", "message") };
                    break;
                case "end": msg = new EndMessage { Reason = Str(m, "end.reason", "reason") }; break;
                default:
                    throw new ProtocolException("unknown_type", "unknown message type '" + type + "' (seq " + seq + ") ignored");
            }
            msg.Seq = seq;
            msg.T = t;
            return msg;
        }

        static ProtocolException Bad(string message) { return new ProtocolException("malformed", message); }

        static object Required(MsgPackMap m, string type, string key)
        {
            object x;
            if (!m.TryGet(key, out x)) throw Bad(type + ": missing key '" + key + "'");
            return x;
        }

        static string TypeOf(string where) { int i = where.IndexOf('.'); return i < 0 ? where : where.Substring(0, i); }

        static string Str(MsgPackMap m, string where, string key)
        {
            object x = Required(m, TypeOf(where), key);
            var s = x as string;
            if (s == null) throw Bad(where + ": expected str, found " + KindOf(x));
            return s;
        }

        static long Seq(MsgPackMap m, string where, string key)
        {
            object x = Required(m, TypeOf(where), key);
            if (x is ulong) throw Bad(where + ": expected an int from 1 to 2**63-1, found " + x);
            if (!(x is long)) throw Bad(where + ": expected int, found " + KindOf(x));
            long n = (long)x;
            if (n < 1) throw Bad(where + ": expected an int from 1 to 2**63-1, found " + n);
            return n;
        }

        static double Float(MsgPackMap m, string where, string key, bool positive, bool nonNegative)
        {
            object x = Required(m, TypeOf(where), key);
            double d;
            if (x is double) d = (double)x;
            else if (x is long) d = (long)x;
            else if (x is ulong) d = (ulong)x;
            else throw Bad(where + ": expected float, found " + KindOf(x));
            if (double.IsNaN(d) || double.IsInfinity(d)) throw Bad(where + ": expected a finite float, found " + d);
            if (positive && d <= 0) throw Bad(where + ": expected a float > 0, found " + d);
            if (nonNegative && d < 0) throw Bad(where + ": expected a float >= 0.0, found " + d);
            return d;
        }

        static SceneState State(MsgPackMap m, string where, string key)
        {
            object x = Required(m, TypeOf(where), key);
            var map = x as MsgPackMap;
            if (map == null) throw Bad(where + ": expected map, found " + KindOf(x));
            var s = new SceneState();
            foreach (var kv in map.Entries)
            {
                var k = kv.Key as string;
                if (k == null) throw Bad(where + ": expected str keys, found a " + KindOf(kv.Key) + " key");
                var v = kv.Value;
                if (v is string) s.Set(k, (string)v);
                else if (v is long) s.Set(k, (long)v);
                else if (v is double)
                {
                    double d = (double)v;
                    if (double.IsNaN(d) || double.IsInfinity(d)) throw Bad(where + "." + k + ": expected a finite number, found " + d);
                    s.Set(k, d);
                }
                else if (v is ulong) throw Bad(where + "." + k + ": int above 2**63-1 is not supported by this client");
                else throw Bad(where + "." + k + ": expected str or number, found " + KindOf(v));
            }
            return s;
        }

        public static string KindOf(object x)
        {
            if (x == null) return "nil";
            if (x is bool) return "bool";
            if (x is long || x is ulong) return "int";
            if (x is double) return "float";
            if (x is string) return "str";
            if (x is MsgPackBin) return "bin";
            if (x is MsgPackExt) return "ext";
            if (x is List<object>) return "array";
            if (x is MsgPackMap) return "map";
            return x.GetType().Name;
        }
    }
}
