// The overview's live counter: events and people of the last five minutes, every 5 seconds.
"use strict";
(function () {
  const box = document.getElementById("live");
  if (!box) return;
  const events = document.getElementById("live-events");
  const people = document.getElementById("live-people");
  const format = new Intl.NumberFormat("en-US");
  async function refresh() {
    try {
      const response = await fetch(box.dataset.url, { credentials: "same-origin" });
      if (!response.ok) return;
      const counts = await response.json();
      events.textContent = format.format(counts.events);
      people.textContent = format.format(counts.people);
    } catch (error) {
      // a missed refresh is shown by the next one
    }
  }
  setInterval(refresh, 5000);
})();
