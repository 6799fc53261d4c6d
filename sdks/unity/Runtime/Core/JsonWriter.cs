// A small JSON writer for the SDK's own flat events: Unity's JsonUtility cannot write a
// dictionary, and the core takes no dependency a game would have to ship.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Roost.Game
{
    internal sealed class JsonWriter
    {
        private readonly StringBuilder _out = new StringBuilder();
        private bool _first = true;

        public void Begin() { _out.Append('{'); _first = true; }
        public void End() { _out.Append('}'); _first = false; }

        private void Key(string name)
        {
            if (!_first) _out.Append(',');
            _first = false;
            Quote(name);
            _out.Append(':');
        }

        public void Field(string name, string value) { Key(name); Quote(value); }
        public void Field(string name, double value) { Key(name); Number(value); }

        public void Object(string name, IDictionary<string, object> values)
        {
            Key(name);
            _out.Append('{');
            var first = true;
            foreach (var pair in values)
            {
                if (!first) _out.Append(',');
                first = false;
                Quote(pair.Key);
                _out.Append(':');
                Value(pair.Value);
            }
            _out.Append('}');
        }

        private void Value(object value)
        {
            if (value == null) { _out.Append("null"); return; }
            if (value is bool) { _out.Append((bool)value ? "true" : "false"); return; }
            if (value is string) { Quote((string)value); return; }
            if (value is double || value is float || value is int || value is long || value is short
                || value is byte || value is uint || value is ulong || value is decimal)
            {
                Number(Convert.ToDouble(value, CultureInfo.InvariantCulture));
                return;
            }
            Quote(Convert.ToString(value, CultureInfo.InvariantCulture));  // anything else as text
        }

        private void Number(double value)
        {
            if (double.IsNaN(value) || double.IsInfinity(value)) { _out.Append("null"); return; }
            _out.Append(value.ToString("R", CultureInfo.InvariantCulture));
        }

        private void Quote(string text)
        {
            if (text == null) { _out.Append("null"); return; }
            _out.Append('"');
            foreach (var c in text)
            {
                switch (c)
                {
                    case '"': _out.Append("\\\""); break;
                    case '\\': _out.Append("\\\\"); break;
                    case '\n': _out.Append("\\n"); break;
                    case '\r': _out.Append("\\r"); break;
                    case '\t': _out.Append("\\t"); break;
                    default:
                        if (c < ' ') _out.Append("\\u").Append(((int)c).ToString("x4"));
                        else _out.Append(c);
                        break;
                }
            }
            _out.Append('"');
        }

        public override string ToString() { return _out.ToString(); }

        /// <summary>A batch body: {"events": [...]} from events already written.</summary>
        public static string Batch(IList<string> events)
        {
            var body = new StringBuilder("{\"events\":[");
            for (var i = 0; i < events.Count; i++)
            {
                if (i > 0) body.Append(',');
                body.Append(events[i]);
            }
            return body.Append("]}").ToString();
        }
    }
}
