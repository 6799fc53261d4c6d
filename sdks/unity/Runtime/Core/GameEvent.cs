// One event of the game-telemetry dialect (docs/wire-contracts.md, dialect 2), and what a
// Track* call may add to it.
using System;
using System.Collections.Generic;

namespace Roost.Game
{
    /// <summary>What a Track* call may carry beside its name.</summary>
    public sealed class TrackOptions
    {
        public double? Value;
        public string Dim01;
        public string Dim02;
        public string Dim03;
        /// <summary>Top-level values only: string, number, boolean or null.</summary>
        public IDictionary<string, object> Data;
        /// <summary>Errors: groups identical errors (kept as data.signature).</summary>
        public string Signature;
    }

    public sealed class GameEvent
    {
        public string EventId;
        public string BuildVersion;
        public string SessionId;
        public string PlayerHash;
        public DateTime Timestamp;  // UTC
        public string Type;
        public string Name;
        public double? Value;
        public string Dim01;
        public string Dim02;
        public string Dim03;
        public IDictionary<string, object> Data;

        public string ToJson()
        {
            var json = new JsonWriter();
            json.Begin();
            json.Field("event_id", EventId);
            json.Field("build_version", BuildVersion);
            json.Field("session_id", SessionId);
            json.Field("player_hash", PlayerHash);
            json.Field("ts", Timestamp.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"));
            json.Field("type", Type);
            json.Field("name", Name);
            if (Value.HasValue) json.Field("value", Value.Value);
            if (Dim01 != null) json.Field("dim01", Dim01);
            if (Dim02 != null) json.Field("dim02", Dim02);
            if (Dim03 != null) json.Field("dim03", Dim03);
            if (Data != null && Data.Count > 0) json.Object("data", Data);
            json.End();
            return json.ToString();
        }
    }
}
