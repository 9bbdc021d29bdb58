import "./style.css";

// The pipeline's steps as staff will meet them; each becomes a screen.
const steps = [
  "Drop CSV exports (shows, seasons, episodes, assets)",
  "See every problem highlighted in place, and fix it",
  "Review exactly what will change",
  "Sync, and watch the queues drain",
  "Triage what failed",
];

const app = document.querySelector<HTMLDivElement>("#app");
if (app) {
  app.innerHTML = `
    <header><h1>Metasync</h1><span>broadcast catalog sync</span></header>
    <main>
      <section class="drop" aria-label="Drop zone">
        <p><strong>Drop CSV files here</strong></p>
        <p>Validation runs today from the command line: <code>metasync validate FILE…</code></p>
      </section>
      <h2>How it will work</h2>
      <ol>${steps.map((s) => `<li>${s}</li>`).join("")}</ol>
    </main>`;
}
