// Client-side router: the server answers every route with index.html, this script picks the view.
const view = document.getElementById("view");
const nav = document.getElementById("nav");

const tools = {
  "/base64-string-converter": () => {
    view.innerHTML = `<h1>Base64 converter</h1>
      <textarea id="input" placeholder="Text"></textarea>
      <button id="encode">Encode</button><button id="decode">Decode</button>
      <textarea id="output" readonly></textarea><p id="err" class="error"></p>`;
    const input = view.querySelector("#input"), output = view.querySelector("#output"), err = view.querySelector("#err");
    view.querySelector("#encode").onclick = () => {
      const bytes = new TextEncoder().encode(input.value);
      output.value = btoa(String.fromCharCode(...bytes));
      err.textContent = "";
    };
    view.querySelector("#decode").onclick = () => {
      try {
        const bin = atob(input.value.trim());
        output.value = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
        err.textContent = "";
      } catch (e) {
        err.textContent = "Not valid Base64.";
      }
    };
  },
  "/uuid-generator": () => {
    view.innerHTML = `<h1>UUID generator</h1><input id="count" type="number" min="1" max="50" value="5">
      <button id="gen">Generate</button><textarea id="output" readonly></textarea>`;
    const gen = () => {
      const n = Math.min(50, Math.max(1, Number(view.querySelector("#count").value) || 1));
      view.querySelector("#output").value = Array.from({ length: n }, () => crypto.randomUUID()).join("\n");
    };
    view.querySelector("#gen").onclick = gen;
    gen();
  },
  "/json-prettify": () => {
    view.innerHTML = `<h1>JSON prettify</h1><textarea id="input">{"hello":"world","list":[1,2,3]}</textarea>
      <button id="fmt">Format</button><textarea id="output" readonly></textarea><p id="err" class="error"></p>`;
    view.querySelector("#fmt").onclick = () => {
      try {
        view.querySelector("#output").value = JSON.stringify(JSON.parse(view.querySelector("#input").value), null, 2);
        view.querySelector("#err").textContent = "";
      } catch (e) {
        view.querySelector("#err").textContent = e.message;
      }
    };
  },
};

async function home() {
  const list = await (await fetch("/assets/tools.json")).json();
  view.innerHTML = "<h1>Tools</h1><ul>" +
    list.map((t) => `<li><a href="${t.path}" data-link>${t.name}</a> — ${t.description}</li>`).join("") + "</ul>";
}

function render() {
  const path = location.pathname;
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.getAttribute("href") === path);
  const tool = tools[path];
  if (tool) tool();
  else if (path === "/") home();
  else view.innerHTML = `<h1>Not found</h1><p>No tool at <code>${path.replace(/</g, "&lt;")}</code>.</p>`;
}

nav.innerHTML = Object.keys(tools).map((p) => `<a href="${p}" data-link>${p.slice(1).split("-")[0]}</a>`).join("");
document.addEventListener("click", (e) => {
  const link = e.target.closest("a[data-link]");
  if (!link) return;
  e.preventDefault();
  history.pushState(null, "", link.getAttribute("href"));
  render();
});
window.addEventListener("popstate", render);
render();
