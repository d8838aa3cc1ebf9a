// Reads ZeroMQ "zcert" key files as written by `exposure-ctrl keys generate` (pyzmq/czmq format):
//   curve
//       public-key = "<40 Z85 characters>"
//       secret-key = "<40 Z85 characters>"     (only in *.key_secret files)
using System;
using System.IO;

namespace ExposureCtrl.Bridge.Protocol
{
    public sealed class ZCert
    {
        public readonly string PublicKey;
        public readonly string SecretKey;  // null in a public *.key file

        public ZCert(string publicKey, string secretKey) { PublicKey = publicKey; SecretKey = secretKey; }

        public static ZCert Load(string path) { return Parse(File.ReadAllText(path), path); }

        public static ZCert Parse(string text, string source = "key file")
        {
            string pub = null, sec = null;
            foreach (var raw in text.Split('\n'))
            {
                var line = raw.Trim();
                if (line.StartsWith("#")) continue;
                if (line.StartsWith("public-key")) pub = Value(line);
                else if (line.StartsWith("secret-key")) sec = Value(line);
            }
            if (pub == null) throw new FormatException(source + ": no public-key found");
            Check(pub, source, "public-key");
            if (sec != null) Check(sec, source, "secret-key");
            return new ZCert(pub, sec);
        }

        static string Value(string line)
        {
            int eq = line.IndexOf('=');
            return eq < 0 ? "" : line.Substring(eq + 1).Trim().Trim('"', '\'');
        }

        static void Check(string key, string source, string what)
        {
            if (key.Length != 40) throw new FormatException(source + ": " + what + " must be 40 Z85 characters, found " + key.Length);
        }
    }
}
