// The game document's static face (seed 000): OwlsignalClient.Initialize + Track*, the same
// calls as the web SDK. In Unity it drives itself from a hidden MonoBehaviour (Update, quit,
// pause) and sends with UnityWebRequest; elsewhere from a timer, with HttpClient.
using System;
using System.Collections.Generic;
using System.Threading;

namespace Roost.Game
{
    public static class OwlsignalClient
    {
        private static GameClient _client;
        private static Timer _timer;

        public static GameClient Client { get { return _client; } }

        /// <summary>Once, early: the write key, the build, and Roost's events URL (optional). The
        /// queue is kept under `queueDirectory` (Unity: Application.persistentDataPath).</summary>
        public static void Initialize(string apiKey, string buildVersion, string endpointUrl = null,
                                      string queueDirectory = null)
        {
            var settings = new GameSettings { ApiKey = apiKey, BuildVersion = buildVersion };
            if (!string.IsNullOrEmpty(endpointUrl)) settings.EndpointUrl = endpointUrl;
#if UNITY_5_3_OR_NEWER
            settings.Transport = new UnityWebRequestTransport();
            if (queueDirectory == null) queueDirectory = System.IO.Path.Combine(UnityEngine.Application.persistentDataPath, "roost");
#endif
            if (queueDirectory != null)
            {
                try { settings.Store = new FileQueueStore(queueDirectory); } catch (Exception) { /* memory only */ }
            }
            Initialize(settings);
        }

        public static void Initialize(GameSettings settings)
        {
            try
            {
                Shutdown(sendSessionEnd: false);
                _client = new GameClient(settings);
#if UNITY_5_3_OR_NEWER
                RoostRunner.Ensure();
#else
                _timer = new Timer(_ => { _ = _client?.TickAsync(); }, null, 1000, 1000);
#endif
                if (_client.Queued > 0) { _ = _client.FlushAsync(); }  // last run's queue
            }
            catch (Exception)
            {
                // never into the game
            }
        }

        public static void TrackProgression(string name, TrackOptions options = null) { _client?.TrackProgression(name, options); }
        public static void TrackDesign(string name, TrackOptions options = null) { _client?.TrackDesign(name, options); }
        public static void TrackResource(string name, TrackOptions options = null) { _client?.TrackResource(name, options); }
        public static void TrackResource(string name, double value) { _client?.TrackResource(name, value); }
        public static void TrackError(string name, TrackOptions options = null) { _client?.TrackError(name, options); }
        public static void IdentifyUser(string id) { _client?.IdentifyUser(id); }
        public static void SetOptOut(bool optOut) { _client?.SetOptOut(optOut); }
        public static void Flush() { _ = _client?.FlushAsync(force: true); }

        /// <summary>Session:End and a last send (Unity calls it on quit; call it yourself
        /// elsewhere), waiting at most `wait` for it.</summary>
        public static void Shutdown(bool sendSessionEnd = true, TimeSpan? wait = null)
        {
            var client = _client;
            var timer = _timer;
            _timer = null;
            if (timer != null) timer.Dispose();
            if (client == null || !sendSessionEnd) return;
            try { client.EndSessionAsync().Wait(wait ?? TimeSpan.FromSeconds(2)); } catch (Exception) { }
        }

        /// <summary>Data as the Track* calls take it: OwlsignalClient.Data("stack", "at …").</summary>
        public static IDictionary<string, object> Data(params object[] pairs)
        {
            var data = new Dictionary<string, object>();
            for (var i = 0; i + 1 < pairs.Length; i += 2) data[Convert.ToString(pairs[i])] = pairs[i + 1];
            return data;
        }
    }
}
