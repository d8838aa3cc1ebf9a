// A small MessagePack reader and writer: exactly what PROTOCOL.md v1 needs, no dependencies.
//
// The writer is canonical (it produces the bytes of vectors.json): ints in their shortest form
// (positive as fixint/uint8/16/32/64, negative as negative fixint/int8/16/32/64), floats always
// as float64, strings as str (never bin), maps and arrays with the shortest header. The reader
// accepts every format of the spec and turns the frame into plain objects:
//   nil -> null, bool -> bool, int -> long (ulong above long.MaxValue), float32/64 -> double,
//   str -> string (strict UTF-8), bin -> MsgPackBin, ext -> MsgPackExt,
//   array -> List<object>, map -> MsgPackMap (keys in wire order).
// Malformed input (truncated, invalid UTF-8, never-used byte 0xc1, nesting deeper than
// MaxDepth, lengths larger than the remaining bytes) raises MsgPackException.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace ExposureCtrl.Bridge.Protocol
{
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    /// <summary>A msgpack bin value (kept apart from str so that validation can reject it).</summary>
    public sealed class MsgPackBin
    {
        public readonly byte[] Data;
        public MsgPackBin(byte[] data) { Data = data; }
    }

    /// <summary>A msgpack ext value.</summary>
    public sealed class MsgPackExt
    {
        public readonly sbyte ExtType;
        public readonly byte[] Data;
        public MsgPackExt(sbyte type, byte[] data) { ExtType = type; Data = data; }
    }

    /// <summary>A msgpack map with its keys in wire order.</summary>
    public sealed class MsgPackMap
    {
        public readonly List<KeyValuePair<object, object>> Entries = new List<KeyValuePair<object, object>>();

        public void Add(object key, object value) { Entries.Add(new KeyValuePair<object, object>(key, value)); }

        public int Count { get { return Entries.Count; } }

        /// <summary>The value of a string key (the last one if repeated); false when absent.</summary>
        public bool TryGet(string key, out object value)
        {
            bool found = false;
            value = null;
            foreach (var kv in Entries)
            {
                var k = kv.Key as string;
                if (k != null && k == key) { value = kv.Value; found = true; }
            }
            return found;
        }
    }

    public sealed class MsgPackWriter
    {
        readonly MemoryStream _out = new MemoryStream();

        public byte[] ToArray() { return _out.ToArray(); }

        void B(int b) { _out.WriteByte((byte)b); }

        void BE(ulong v, int bytes)
        {
            for (int i = bytes - 1; i >= 0; i--) _out.WriteByte((byte)(v >> (8 * i)));
        }

        public void WriteNil() { B(0xc0); }

        public void Write(bool v) { B(v ? 0xc3 : 0xc2); }

        public void Write(long v)
        {
            if (v >= 0) { WriteUnsigned((ulong)v); return; }
            if (v >= -32) B((int)(0xe0 | (v & 0x1f)));
            else if (v >= sbyte.MinValue) { B(0xd0); BE((ulong)v, 1); }
            else if (v >= short.MinValue) { B(0xd1); BE((ulong)v, 2); }
            else if (v >= int.MinValue) { B(0xd2); BE((ulong)v, 4); }
            else { B(0xd3); BE((ulong)v, 8); }
        }

        public void WriteUnsigned(ulong v)
        {
            if (v <= 0x7f) B((int)v);
            else if (v <= 0xff) { B(0xcc); BE(v, 1); }
            else if (v <= 0xffff) { B(0xcd); BE(v, 2); }
            else if (v <= 0xffffffffUL) { B(0xce); BE(v, 4); }
            else { B(0xcf); BE(v, 8); }
        }

        public void Write(double v)
        {
            B(0xcb);
            BE((ulong)BitConverter.DoubleToInt64Bits(v), 8);
        }

        public void Write(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            int n = bytes.Length;
            if (n <= 31) B(0xa0 | n);
            else if (n <= 0xff) { B(0xd9); BE((ulong)n, 1); }
            else if (n <= 0xffff) { B(0xda); BE((ulong)n, 2); }
            else { B(0xdb); BE((ulong)n, 4); }
            _out.Write(bytes, 0, n);
        }

        public void WriteArrayHeader(int n)
        {
            if (n <= 15) B(0x90 | n);
            else if (n <= 0xffff) { B(0xdc); BE((ulong)n, 2); }
            else { B(0xdd); BE((ulong)n, 4); }
        }

        public void WriteMapHeader(int n)
        {
            if (n <= 15) B(0x80 | n);
            else if (n <= 0xffff) { B(0xde); BE((ulong)n, 2); }
            else { B(0xdf); BE((ulong)n, 4); }
        }

        /// <summary>Write a plain object tree (null, bool, integers, double, float, string,
        /// IList, MsgPackMap, IDictionary&lt;string, object&gt;).</summary>
        public void WriteObject(object o)
        {
            if (o == null) { WriteNil(); return; }
            if (o is bool) { Write((bool)o); return; }
            if (o is long) { Write((long)o); return; }
            if (o is int) { Write((long)(int)o); return; }
            if (o is ulong) { WriteUnsigned((ulong)o); return; }
            if (o is double) { Write((double)o); return; }
            if (o is float) { Write((double)(float)o); return; }
            var s = o as string;
            if (s != null) { Write(s); return; }
            var m = o as MsgPackMap;
            if (m != null)
            {
                WriteMapHeader(m.Count);
                foreach (var kv in m.Entries) { WriteObject(kv.Key); WriteObject(kv.Value); }
                return;
            }
            var d = o as IDictionary<string, object>;
            if (d != null)
            {
                WriteMapHeader(d.Count);
                foreach (var kv in d) { Write(kv.Key); WriteObject(kv.Value); }
                return;
            }
            var l = o as System.Collections.IList;
            if (l != null)
            {
                WriteArrayHeader(l.Count);
                foreach (var x in l) WriteObject(x);
                return;
            }
            throw new ArgumentException("cannot write a " + o.GetType().Name + " as msgpack");
        }
    }

    public sealed class MsgPackReader
    {
        public const int MaxDepth = 64;
        static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        readonly byte[] _b;
        int _pos;

        public MsgPackReader(byte[] data) { _b = data; _pos = 0; }

        public int Position { get { return _pos; } }
        public bool AtEnd { get { return _pos >= _b.Length; } }

        /// <summary>Read exactly one object spanning the whole buffer.</summary>
        public static object ReadSingle(byte[] data)
        {
            var r = new MsgPackReader(data);
            var o = r.ReadObject();
            if (!r.AtEnd) throw new MsgPackException("more than one msgpack object");
            return o;
        }

        void Need(long n)
        {
            if (n < 0 || _pos + n > _b.Length) throw new MsgPackException("truncated msgpack data");
        }

        ulong BE(int bytes)
        {
            Need(bytes);
            ulong v = 0;
            for (int i = 0; i < bytes; i++) v = (v << 8) | _b[_pos++];
            return v;
        }

        byte[] Bytes(long n)
        {
            Need(n);
            var a = new byte[n];
            Array.Copy(_b, _pos, a, 0, (int)n);
            _pos += (int)n;
            return a;
        }

        public object ReadObject() { return Read(0); }

        object Read(int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("msgpack nested deeper than " + MaxDepth);
            Need(1);
            int t = _b[_pos++];
            if (t <= 0x7f) return (long)t;
            if (t >= 0xe0) return (long)(sbyte)t;
            if ((t & 0xf0) == 0x80) return ReadMap(t & 0x0f, depth);
            if ((t & 0xf0) == 0x90) return ReadArray(t & 0x0f, depth);
            if ((t & 0xe0) == 0xa0) return Str(t & 0x1f);
            switch (t)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return new MsgPackBin(Bytes((long)BE(1)));
                case 0xc5: return new MsgPackBin(Bytes((long)BE(2)));
                case 0xc6: return new MsgPackBin(Bytes((long)BE(4)));
                case 0xc7: { long n = (long)BE(1); return Ext(n); }
                case 0xc8: { long n = (long)BE(2); return Ext(n); }
                case 0xc9: { long n = (long)BE(4); return Ext(n); }
                case 0xca:
                {
                    uint bits = (uint)BE(4);
                    return (double)BitConverter.ToSingle(BitConverter.GetBytes(bits), 0);
                }
                case 0xcb: return BitConverter.Int64BitsToDouble((long)BE(8));
                case 0xcc: return (long)BE(1);
                case 0xcd: return (long)BE(2);
                case 0xce: return (long)BE(4);
                case 0xcf:
                {
                    ulong v = BE(8);
                    if (v <= long.MaxValue) return (long)v;
                    return v;
                }
                case 0xd0: return (long)(sbyte)BE(1);
                case 0xd1: return (long)(short)BE(2);
                case 0xd2: return (long)(int)BE(4);
                case 0xd3: return (long)BE(8);
                case 0xd4: return Ext(1);
                case 0xd5: return Ext(2);
                case 0xd6: return Ext(4);
                case 0xd7: return Ext(8);
                case 0xd8: return Ext(16);
                case 0xd9: return Str((long)BE(1));
                case 0xda: return Str((long)BE(2));
                case 0xdb: return Str((long)BE(4));
                case 0xdc: return ReadArray((long)BE(2), depth);
                case 0xdd: return ReadArray((long)BE(4), depth);
                case 0xde: return ReadMap((long)BE(2), depth);
                case 0xdf: return ReadMap((long)BE(4), depth);
                default: throw new MsgPackException("invalid msgpack byte 0x" + t.ToString("x2"));
            }
        }

        object Ext(long n)
        {
            Need(1 + n);
            var type = (sbyte)_b[_pos++];
            return new MsgPackExt(type, Bytes(n));
        }

        string Str(long n)
        {
            Need(n);
            try
            {
                var s = StrictUtf8.GetString(_b, _pos, (int)n);
                _pos += (int)n;
                return s;
            }
            catch (ArgumentException)
            {
                throw new MsgPackException("str is not valid UTF-8");
            }
        }

        List<object> ReadArray(long n, int depth)
        {
            Need(n);  // every element takes at least one byte: no allocation bombs
            var list = new List<object>((int)n);
            for (long i = 0; i < n; i++) list.Add(Read(depth + 1));
            return list;
        }

        MsgPackMap ReadMap(long n, int depth)
        {
            Need(2 * n);
            var m = new MsgPackMap();
            for (long i = 0; i < n; i++)
            {
                var k = Read(depth + 1);
                var v = Read(depth + 1);
                m.Add(k, v);
            }
            return m;
        }
    }
}
