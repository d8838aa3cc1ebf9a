// Just enough JSON to read vectors.json: objects become MsgPackMap (keys in order), arrays
// List<object>, numbers long (no '.', 'e' or 'E') or double, strings, bools, null.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using ExposureCtrl.Bridge.Protocol;

namespace ExposureCtrl.Bridge.Tests
{
    public sealed class MiniJson
    {
        readonly string _s;
        int _i;

        MiniJson(string s) { _s = s; }

        public static object Parse(string s)
        {
            var p = new MiniJson(s);
            var v = p.Value();
            p.Ws();
            if (p._i != s.Length) throw new FormatException("trailing JSON at " + p._i);
            return v;
        }

        void Ws() { while (_i < _s.Length && char.IsWhiteSpace(_s[_i])) _i++; }

        object Value()
        {
            Ws();
            char c = _s[_i];
            if (c == '{') return Obj();
            if (c == '[') return Arr();
            if (c == '"') return Str();
            if (_s.Substring(_i).StartsWith("true")) { _i += 4; return true; }
            if (_s.Substring(_i).StartsWith("false")) { _i += 5; return false; }
            if (_s.Substring(_i).StartsWith("null")) { _i += 4; return null; }
            return Num();
        }

        MsgPackMap Obj()
        {
            var m = new MsgPackMap();
            _i++;
            Ws();
            if (_s[_i] == '}') { _i++; return m; }
            while (true)
            {
                Ws();
                var k = Str();
                Ws();
                if (_s[_i++] != ':') throw new FormatException("expected ':' at " + _i);
                m.Add(k, Value());
                Ws();
                char c = _s[_i++];
                if (c == '}') return m;
                if (c != ',') throw new FormatException("expected ',' at " + _i);
            }
        }

        List<object> Arr()
        {
            var l = new List<object>();
            _i++;
            Ws();
            if (_s[_i] == ']') { _i++; return l; }
            while (true)
            {
                l.Add(Value());
                Ws();
                char c = _s[_i++];
                if (c == ']') return l;
                if (c != ',') throw new FormatException("expected ',' at " + _i);
            }
        }

        string Str()
        {
            if (_s[_i++] != '"') throw new FormatException("expected string at " + _i);
            var sb = new StringBuilder();
            while (true)
            {
                char c = _s[_i++];
                if (c == '"') return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                char e = _s[_i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u': sb.Append((char)Convert.ToInt32(_s.Substring(_i, 4), 16)); _i += 4; break;
                    default: sb.Append(e); break;
                }
            }
        }

        object Num()
        {
            int start = _i;
            while (_i < _s.Length && "+-0123456789.eE".IndexOf(_s[_i]) >= 0) _i++;
            var t = _s.Substring(start, _i - start);
            if (t.IndexOfAny(new[] { '.', 'e', 'E' }) >= 0) return double.Parse(t, CultureInfo.InvariantCulture);
            return long.Parse(t, CultureInfo.InvariantCulture);
        }
    }
}
