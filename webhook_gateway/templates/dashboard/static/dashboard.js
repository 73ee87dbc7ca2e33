// Progressive enhancement only: every page reads and acts without this file.
// Copy buttons for secrets and links shown once (the value stays in the page, never in storage).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        field.select();
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
  for (const field of document.querySelectorAll(".copy-field input[readonly]")) {
    field.addEventListener("focus", () => field.select());
  }
});
