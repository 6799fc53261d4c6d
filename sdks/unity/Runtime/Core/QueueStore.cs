// Where the queue waits between app runs: events not yet acknowledged survive a quit, a
// crash or an outage, and go with the next run's first batch.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Roost.Game
{
    public interface IQueueStore
    {
        List<string> Load();
        void Save(IList<string> events);
        string LoadPlayer();
        void SavePlayer(string player);
    }

    /// <summary>Nothing kept: a queue for this run only.</summary>
    public sealed class MemoryQueueStore : IQueueStore
    {
        private List<string> _events = new List<string>();
        private string _player;
        public List<string> Load() { return new List<string>(_events); }
        public void Save(IList<string> events) { _events = new List<string>(events); }
        public string LoadPlayer() { return _player; }
        public void SavePlayer(string player) { _player = player; }
    }

    /// <summary>One file of JSON lines (one event each), replaced whole so a crash while
    /// writing leaves the old queue, never half of one; the player's hash beside it.</summary>
    public sealed class FileQueueStore : IQueueStore
    {
        private readonly string _queue;
        private readonly string _player;

        public FileQueueStore(string directory)
        {
            Directory.CreateDirectory(directory);
            _queue = Path.Combine(directory, "roost-queue.jsonl");
            _player = Path.Combine(directory, "roost-player");
        }

        public List<string> Load()
        {
            var events = new List<string>();
            if (!File.Exists(_queue)) return events;
            foreach (var line in File.ReadAllLines(_queue, Encoding.UTF8))
            {
                if (line.StartsWith("{") && line.EndsWith("}")) events.Add(line);  // a torn line is no event
            }
            return events;
        }

        public void Save(IList<string> events)
        {
            var temporary = _queue + ".tmp";
            File.WriteAllText(temporary, events.Count == 0 ? "" : string.Join("\n", events) + "\n",
                              new UTF8Encoding(false));
            if (File.Exists(_queue)) File.Replace(temporary, _queue, null);
            else File.Move(temporary, _queue);
        }

        public string LoadPlayer()
        {
            return File.Exists(_player) ? File.ReadAllText(_player).Trim() : null;
        }

        public void SavePlayer(string player) { File.WriteAllText(_player, player); }
    }
}
