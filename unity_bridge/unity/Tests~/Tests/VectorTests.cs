// The golden vectors (unity_bridge/vectors.json) against this package's codec.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using ExposureCtrl.Bridge.Protocol;

namespace ExposureCtrl.Bridge.Tests
{
    [TestFixture]
    public static class VectorTests
    {
        static MsgPackMap _doc;

        static MsgPackMap Doc
        {
            get
            {
                if (_doc == null) _doc = (MsgPackMap)MiniJson.Parse(File.ReadAllText(TestRunner.VectorsPath, Encoding.UTF8));
                return _doc;
            }
        }

        static List<object> Group(string name)
        {
            object g;
            Assert.True(Doc.TryGet(name, out g), "vectors.json has " + name);
            return (List<object>)g;
        }

        static string Get(object vec, string key)
        {
            object v;
            ((MsgPackMap)vec).TryGet(key, out v);
            return v as string;
        }

        static object GetObj(object vec, string key)
        {
            object v;
            ((MsgPackMap)vec).TryGet(key, out v);
            return v;
        }

        public static string Hex(byte[] b)
        {
            var sb = new StringBuilder();
            foreach (var x in b) sb.Append(x.ToString("x2"));
            return sb.ToString();
        }

        public static byte[] Bytes(string hex)
        {
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
            return b;
        }

        public static void TestValidVectorsEncodeAndDecodeByteForByte()
        {
            int n = 0;
            foreach (var vec in Group("valid"))
            {
                string name = Get(vec, "name"), hex = Get(vec, "msgpack");
                var msg = Codec.FromMap(GetObj(vec, "message"));
                Assert.Equal(hex, Hex(Codec.Pack(msg)), name + ": encode");
                var back = Codec.Unpack(Bytes(hex));
                Assert.Equal(msg.Type, back.Type, name + ": type");
                Assert.Equal(msg.Seq, back.Seq, name + ": seq");
                Assert.Equal(hex, Hex(Codec.Pack(back)), name + ": decode then encode");
                n++;
            }
            Assert.True(n >= 20, "at least 20 valid vectors, found " + n);
        }

        public static void TestDecodeOnlyVectorsAreAccepted()
        {
            foreach (var vec in Group("decode_only"))
            {
                string name = Get(vec, "name");
                var got = Codec.Unpack(Bytes(Get(vec, "msgpack")));
                var want = Codec.FromMap(GetObj(vec, "message"));
                Assert.Equal(Hex(Codec.Pack(want)), Hex(Codec.Pack(got)), name);
            }
        }

        public static void TestInvalidVectorsAreRejectedWithTheirCode()
        {
            int n = 0;
            foreach (var vec in Group("invalid"))
            {
                string name = Get(vec, "name"), hex = Get(vec, "msgpack");
                var e = Assert.Throws<ProtocolException>(() => Codec.Unpack(Bytes(hex)), name);
                Assert.Equal(Get(vec, "error"), e.Code, name + ": error code (" + e.Message + ")");
                n++;
            }
            Assert.True(n >= 40, "at least 40 invalid vectors, found " + n);
        }

        public static void TestIntegersUseTheShortestForm()
        {
            var cases = new Dictionary<long, string>
            {
                { 0, "00" }, { 127, "7f" }, { 128, "cc80" }, { 255, "ccff" }, { 256, "cd0100" },
                { 65536, "ce00010000" }, { 4294967296, "cf0000000100000000" }, { -1, "ff" }, { -32, "e0" },
                { -33, "d0df" }, { -128, "d080" }, { -129, "d1ff7f" }, { -32769, "d2ffff7fff" },
                { long.MinValue, "d38000000000000000" },
            };
            foreach (var kv in cases)
            {
                var w = new MsgPackWriter();
                w.Write(kv.Key);
                Assert.Equal(kv.Value, Hex(w.ToArray()), "int " + kv.Key);
            }
        }

        public static void TestFrameLimitIs65536Inclusive()
        {
            foreach (int size in new[] { Message.MaxFrameBytes, Message.MaxFrameBytes + 1 })
            {
                // heartbeat with an unknown "pad" str16 key sized to reach exactly `size` bytes
                var head = Bytes("85a17601a474797065a9686561727462656174a373657101a174cb0000000000000000a3706164da");
                int pad = size - head.Length - 2;
                var frame = new byte[size];
                Array.Copy(head, frame, head.Length);
                frame[head.Length] = (byte)(pad >> 8);
                frame[head.Length + 1] = (byte)pad;
                for (int i = head.Length + 2; i < size; i++) frame[i] = (byte)'x';
                if (size == Message.MaxFrameBytes)
                    Assert.Equal("heartbeat", Codec.Unpack(frame).Type, "65536 bytes accepted");
                else
                    Assert.True(Assert.Throws<ProtocolException>(() => Codec.Unpack(frame), "65537").Message.Contains("65536-byte limit"), "limit named");
            }
        }
    }
}
