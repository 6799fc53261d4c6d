// The SDK's core, shape-equivalent to the web SDK (/js/roost-game.mjs): a session starts with
// the first event (Session:Start sent for it) and ends with EndSessionAsync (Session:End);
// batches go every 30 s or at 30 events, up to 100 a request; 5xx, 429 and no answer are
// retried with exponential backoff (and jitter), another 4xx drops the batch; the queue is
// kept in an IQueueStore so it survives a restart; SetOptOut(true) sends what was tracked
// before and drops the rest. No call ever throws into the game.
using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Tasks;

namespace Roost.Game
{
    public sealed class GameSettings
    {
        public string ApiKey;
        public string BuildVersion;
        /// <summary>The full events URL (Roost's /api/v1/events); a bare origin gets the path.</summary>
        public string EndpointUrl = "http://127.0.0.1:8000/api/v1/events";
        public int BatchEvents = 30;
        public TimeSpan FlushInterval = TimeSpan.FromSeconds(30);
        public TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);
        /// <summary>Past this many waiting events the oldest go (an outage must not fill a disk).</summary>
        public int MaxQueued = 5000;
        public ITransport Transport;
        public IQueueStore Store;
    }

    public sealed class GameClient
    {
        public const int MaxRequest = 100;  // events a request may hold (the dialect's limit)
        private static readonly Regex PlayerId = new Regex("^[A-Za-z0-9_-]{32,64}$");

        private readonly GameSettings _settings;
        private readonly ITransport _transport;
        private readonly IQueueStore _store;
        private readonly Func<DateTime> _clock;
        private readonly Random _random;
        private readonly object _lock = new object();
        private readonly List<string> _queue;
        private readonly string _endpoint;
        private string _player;
        private string _session;
        private bool _optOut;
        private bool _sending;
        private int _failures;
        private DateTime _nextSend;
        private DateTime _retryAt = DateTime.MinValue;

        public GameClient(GameSettings settings, Func<DateTime> clock = null, Random random = null)
        {
            _settings = settings;
            _transport = settings.Transport ?? new HttpClientTransport();
            _store = settings.Store ?? new MemoryQueueStore();
            _clock = clock ?? (() => DateTime.UtcNow);
            _random = random ?? new Random();
            _endpoint = Endpoint(settings.EndpointUrl);
            _queue = Safe(() => _store.Load(), new List<string>());
            _player = Safe(() => _store.LoadPlayer(), null);
            if (_player == null || !PlayerId.IsMatch(_player))
            {
                _player = RandomHex(16);
                Safe(() => { _store.SavePlayer(_player); return true; }, false);
            }
            _nextSend = _clock() + settings.FlushInterval;
        }

        public bool Ready { get { return !string.IsNullOrEmpty(_settings.ApiKey) && !string.IsNullOrEmpty(_settings.BuildVersion); } }
        public int Queued { get { lock (_lock) return _queue.Count; } }
        public string Player { get { return _player; } }
        public string Session { get { return _session; } }
        public int Failures { get { return _failures; } }

        public void TrackProgression(string name, TrackOptions options = null) { Push("progression", name, options); }
        public void TrackDesign(string name, TrackOptions options = null) { Push("design", name, options); }
        public void TrackResource(string name, TrackOptions options = null) { Push("resource", name, options); }
        public void TrackResource(string name, double value) { Push("resource", name, new TrackOptions { Value = value }); }

        public void TrackError(string name, TrackOptions options = null)
        {
            if (options != null && options.Signature != null)
            {
                var data = options.Data != null ? new Dictionary<string, object>(options.Data) : new Dictionary<string, object>();
                data["signature"] = options.Signature;
                options = new TrackOptions { Value = options.Value, Dim01 = options.Dim01, Dim02 = options.Dim02, Dim03 = options.Dim03, Data = data };
            }
            Push("error", name, options);
        }

        /// <summary>The player as a stable anonymous hash: an id of 32–64 letters, digits, - or
        /// _ is taken as it is, anything else hashed (the web SDK's cyrb128: the same player
        /// gets the same hash on both).</summary>
        public void IdentifyUser(string id)
        {
            if (id == null) return;
            _player = PlayerId.IsMatch(id) ? id : Cyrb128(id);
            Safe(() => { _store.SavePlayer(_player); return true; }, false);
        }

        public void SetOptOut(bool optOut)
        {
            if (optOut && !_optOut) { _ = FlushAsync(); }  // what was tracked before goes
            _optOut = optOut;
        }

        /// <summary>Called often (every frame in Unity, every second elsewhere): sends when the
        /// interval has passed or a retry is due.</summary>
        public Task TickAsync()
        {
            var now = _clock();
            var due = _failures > 0 ? now >= _retryAt : now >= _nextSend;
            return due ? FlushAsync() : Task.FromResult(false);
        }

        /// <summary>Session:End for the session under way, then everything waiting (the app
        /// is quitting or going to the background).</summary>
        public Task EndSessionAsync()
        {
            if (_session != null && !_optOut) Push("session", "Session:End", null);
            _session = null;
            return FlushAsync(force: true);
        }

        /// <summary>Sends the waiting batches in order until one fails; false if it did.</summary>
        public async Task<bool> FlushAsync(bool force = false)
        {
            if (!Ready) return false;
            lock (_lock)
            {
                if (_sending) return false;
                if (!force && _clock() < _retryAt) return false;
                _sending = true;
            }
            try
            {
                while (true)
                {
                    List<string> batch;
                    lock (_lock)
                    {
                        if (_queue.Count == 0) { _failures = 0; return true; }
                        batch = _queue.GetRange(0, Math.Min(MaxRequest, _queue.Count));
                    }
                    var status = await _transport.SendAsync(_endpoint, _settings.ApiKey, JsonWriter.Batch(batch)).ConfigureAwait(false);
                    if (status == 0 || status == 429 || status >= 500)
                    {
                        _failures += 1;
                        var ceiling = Math.Min(_settings.MaxBackoff.TotalMilliseconds, 1000 * Math.Pow(2, _failures - 1));
                        _retryAt = _clock() + TimeSpan.FromMilliseconds(ceiling / 2 + _random.NextDouble() * ceiling / 2);
                        return false;
                    }
                    lock (_lock)  // stored (2xx), or refused for good (another 4xx): dropped
                    {
                        _queue.RemoveRange(0, Math.Min(batch.Count, _queue.Count));
                        Persist();
                    }
                    _failures = 0;
                    _retryAt = DateTime.MinValue;
                    _nextSend = _clock() + _settings.FlushInterval;
                }
            }
            finally
            {
                lock (_lock) _sending = false;
            }
        }

        private void Push(string type, string name, TrackOptions options)
        {
            try
            {
                if (!Ready || _optOut || string.IsNullOrEmpty(name)) return;
                if (_session == null)
                {
                    _session = Guid.NewGuid().ToString();
                    if (!(type == "session" && name == "Session:Start")) Push("session", "Session:Start", null);
                }
                var e = new GameEvent
                {
                    EventId = Guid.NewGuid().ToString(), BuildVersion = _settings.BuildVersion,
                    SessionId = _session, PlayerHash = _player, Timestamp = _clock(), Type = type, Name = name,
                };
                if (options != null)
                {
                    if (options.Value.HasValue && !double.IsNaN(options.Value.Value) && !double.IsInfinity(options.Value.Value)) e.Value = options.Value;
                    e.Dim01 = options.Dim01; e.Dim02 = options.Dim02; e.Dim03 = options.Dim03;
                    e.Data = options.Data;
                }
                bool full;
                lock (_lock)
                {
                    _queue.Add(e.ToJson());
                    if (_queue.Count > _settings.MaxQueued) _queue.RemoveRange(0, _queue.Count - _settings.MaxQueued);
                    Persist();
                    full = _queue.Count >= _settings.BatchEvents;
                }
                if (full) { _ = FlushAsync(); }
            }
            catch (Exception)
            {
                // never into the game
            }
        }

        private void Persist()
        {
            try { _store.Save(_queue); } catch (Exception) { /* a full disk: kept in memory */ }
        }

        private static T Safe<T>(Func<T> action, T otherwise)
        {
            try { return action(); } catch (Exception) { return otherwise; }
        }

        private static string Endpoint(string given)
        {
            var url = new Uri(string.IsNullOrEmpty(given) ? "http://127.0.0.1:8000" : given);
            if (url.AbsolutePath == "/" && string.IsNullOrEmpty(url.Query))
                url = new Uri(url, "/api/v1/events");
            return url.AbsoluteUri;
        }

        private static string RandomHex(int bytes)
        {
            var data = new byte[bytes];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(data);
            var hex = new StringBuilder(bytes * 2);
            foreach (var b in data) hex.Append(b.ToString("x2"));
            return hex.ToString();
        }

        /// <summary>cyrb128 over UTF-16 code units, as the web SDK computes it.</summary>
        public static string Cyrb128(string text)
        {
            unchecked
            {
                uint h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
                foreach (var c in text)
                {
                    uint k = c;
                    h1 = h2 ^ ((h1 ^ k) * 597399067u);
                    h2 = h3 ^ ((h2 ^ k) * 2869860233u);
                    h3 = h4 ^ ((h3 ^ k) * 951274213u);
                    h4 = h1 ^ ((h4 ^ k) * 2716044179u);
                }
                h1 = (h3 ^ (h1 >> 18)) * 597399067u;
                h2 = (h4 ^ (h2 >> 22)) * 2869860233u;
                h3 = (h1 ^ (h3 >> 17)) * 951274213u;
                h4 = (h2 ^ (h4 >> 19)) * 2716044179u;
                var parts = new[] { h1 ^ h2 ^ h3 ^ h4, h2 ^ h1, h3 ^ h1, h4 ^ h1 };
                var hex = new StringBuilder(32);
                foreach (var p in parts) hex.Append(p.ToString("x8"));
                return hex.ToString();
            }
        }
    }
}
