// hybridrec's page: plain JavaScript over the service's own API (same origin), no build step.
// Every text from the service is set as text, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TIMEOUT_MS = 30000;
  const SESSION_KEY = "hybridrec.session_id";
  const limits = { maxText: 2000, maxN: 100 }; // replaced by the bounds of the service's OpenAPI spec
  let experiment = null; // {name, variants, interleaving} while the service runs an A/B experiment
  let opener = null; // what had the focus when the film dialog opened

  // --- talking to the service -------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function describeDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((e) => {
          const where = (e.loc || []).filter((part) => part !== "body").join(".");
          return where ? `${where}: ${e.msg}` : e.msg;
        })
        .join("; ");
    }
    return "";
  }

  async function api(path, body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    const options = { signal: controller.signal, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new ApiError(
        err.name === "AbortError"
          ? "The service took too long to answer. Try again in a moment."
          : "The service is not answering. Is it running? (start it with: make serve)",
        0,
      );
    } finally {
      clearTimeout(timer);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      payload = null;
    }
    if (!response.ok) {
      let message = describeDetail(payload && payload.detail) || `the service answered ${response.status}`;
      const wait = response.headers.get("Retry-After");
      if (wait) message += ` (try again in ${wait} s)`;
      if (response.status === 404) message = `Not found: ${message}.`;
      else if (response.status >= 500) message = `The service cannot answer now: ${message}.`;
      else message = `The service refused the request: ${message}.`;
      throw new ApiError(message, response.status);
    }
    return payload;
  }

  // --- small DOM helpers ------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function srOnly(text) {
    return el("span", { className: "sr-only" }, text);
  }

  function showError(target, message) {
    $(target).textContent = message || "";
  }

  function setStatus(target, message) {
    $(target).textContent = message || "";
  }

  function filmButton(item, score) {
    return el("button", { type: "button", className: "link", onclick: () => openFilm(item.item_id, score) }, item.title);
  }

  function yearText(year) {
    return year ? ` (${year})` : "";
  }

  function stars(score) {
    if (score === null || score === undefined) {
      return el("p", { className: "stars" }, el("span", { className: "value" }, "no predicted rating"));
    }
    const full = Math.max(0, Math.min(5, Math.round(score)));
    return el(
      "p",
      { className: "stars" },
      el("span", { "aria-hidden": "true" }, "★".repeat(full) + "☆".repeat(5 - full)),
      el("span", { className: "value", "aria-hidden": "true" }, score.toFixed(1)),
      srOnly(`Predicted rating ${score.toFixed(1)} out of 5`),
    );
  }

  // An explanation's films are written *like this*: each becomes a button that opens the film.
  function explanation(text) {
    const paragraph = el("p", { className: "why" });
    text.split(/\*([^*]+)\*/).forEach((part, k) => {
      if (k % 2 === 0) paragraph.append(part);
      else paragraph.append(el("button", { type: "button", className: "link", onclick: () => openTitle(part) }, part));
    });
    return paragraph;
  }

  // --- the A/B experiment -----------------------------------------------------------------------

  function sessionId() {
    let id = null;
    try {
      id = sessionStorage.getItem(SESSION_KEY);
    } catch (err) {
      id = null;
    }
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      try {
        sessionStorage.setItem(SESSION_KEY, id);
      } catch (err) {
        // storage refused (private mode): the id lasts as long as the page
      }
    }
    return id;
  }

  async function loadExperiment() {
    try {
      const found = await api("/experiment");
      experiment = found && found.name ? found : null;
    } catch (err) {
      experiment = null; // 404: a service without experiments; anything else: no controls either
    }
    const note = $("experiment");
    note.hidden = true;
    note.textContent = "";
  }

  function feedbackControls(item, who, variant) {
    const box = el("div", { className: "feedback" });
    const result = el("span", { className: "hint", role: "status", "aria-live": "polite" });
    const send = async (event, label) => {
      buttons.forEach((b) => (b.disabled = true));
      result.textContent = "Sending…";
      try {
        const sent = { ...who, item_id: item.item_id, event };
        if (variant) sent.variant = variant; // fields without a value are left out, never sent as null
        await api("/feedback", sent);
        result.textContent = `Thanks: noted as ${label}.`;
      } catch (err) {
        result.textContent = err.message;
        buttons.forEach((b) => (b.disabled = false));
      }
    };
    const buttons = [
      el("button", { type: "button", className: "secondary", onclick: () => send("watch", "watched") }, "Watched it", srOnly(`: ${item.title}`)),
      el("button", { type: "button", className: "secondary", onclick: () => send("dismiss", "not interested") }, "Not interested", srOnly(`: ${item.title}`)),
    ];
    box.append(...buttons, result);
    return box;
  }

  // --- the form ---------------------------------------------------------------------------------

  const mode = () => ($("who-text").checked ? "text" : "user");

  function showMode() {
    $("user-panel").hidden = mode() !== "user";
    $("text-panel").hidden = mode() !== "text";
  }

  function countText() {
    const length = $("user-text").value.length;
    const over = length > limits.maxText;
    $("user-text-count").textContent = over
      ? `${length} of ${limits.maxText} characters: ${length - limits.maxText} too many.`
      : `${length} of ${limits.maxText} characters.`;
    $("user-text-count").className = over ? "hint error" : "hint";
  }

  function invalid(field, message) {
    $(field).setAttribute("aria-invalid", "true");
    showError("form-error", message);
    $(field).focus();
    return null;
  }

  // The request body, or null (with the reason shown) when the form cannot be sent as it is.
  function readForm() {
    for (const id of ["user-id", "user-text", "n"]) $(id).removeAttribute("aria-invalid");
    showError("form-error", "");
    showError("error", ""); // an earlier answer's error no longer stands
    const n = Number($("n").value);
    if (!Number.isInteger(n) || n < 1 || n > limits.maxN) {
      return invalid("n", `How many films: a whole number from 1 to ${limits.maxN}.`);
    }
    const body = { n, explain: $("explain").checked };
    const genres = Array.from(document.querySelectorAll("#genre-list input:checked"), (box) => box.value);
    if (genres.length) body.genres = genres;
    if (mode() === "user") {
      const id = Number($("user-id").value);
      if ($("user-id").value.trim() === "" || !Number.isInteger(id) || id < 1) {
        return invalid("user-id", "Enter a user id: a whole number from 1.");
      }
      body.user_id = id;
    } else {
      const text = $("user-text").value;
      if (!text.trim()) return invalid("user-text", "Describe yourself first: a few words about the films you like.");
      if (text.length > limits.maxText) {
        return invalid("user-text", `Your description has ${text.length} characters; the limit is ${limits.maxText}. Shorten it.`);
      }
      body.user_text = text;
      if (experiment) body.session_id = sessionId();
    }
    return body;
  }

  function busy(on) {
    $("go").disabled = on;
    $("results").setAttribute("aria-busy", on ? "true" : "false");
  }

  async function recommend(event) {
    event.preventDefault();
    const body = readForm();
    if (!body) return;
    busy(true);
    setStatus("status", "Finding films…");
    const profile = body.user_id !== undefined ? api(`/users/${body.user_id}`) : Promise.resolve(null);
    try {
      const [answer, user] = await Promise.all([api("/recommend", body), profile]);
      showProfile(user);
      showList(answer, body);
      if ($("results").getBoundingClientRect().top > window.innerHeight) $("results").scrollIntoView(); // a phone
    } catch (err) {
      $("list").replaceChildren();
      $("experiment").hidden = true;
      showProfile(null);
      setStatus("status", "");
      showError("error", err.message);
    } finally {
      busy(false);
    }
  }

  function showProfile(user) {
    $("profile").hidden = !user;
    if (!user) return;
    $("profile-title").textContent = `User ${user.user_id}`;
    const facts = [
      ["Age", user.age],
      ["Gender", user.gender],
      ["Occupation", user.occupation],
      ["Films rated", user.n_ratings],
    ].filter(([, value]) => value !== null && value !== undefined);
    $("profile-facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
    $("profile-top").replaceChildren(
      ...user.top_rated.map((item) => el("li", {}, filmButton(item), yearText(item.year), ` · rated ${item.rating}★`)),
    );
  }

  function showList(answer, body) {
    const who = body.user_id !== undefined ? `user ${body.user_id}` : "your description";
    const items = answer.items || [];
    const note = $("experiment");
    note.hidden = !experiment;
    note.textContent = experiment
      ? `Experiment “${experiment.name}”: variant ${answer.variant || "none"} answered this list.`
      : "";
    const feedbackWho = body.user_id !== undefined ? { user_id: body.user_id } : { session_id: sessionId() };
    $("list").replaceChildren(
      ...items.map((item) => {
        const children = [
          el("h3", {}, filmButton(item, item.score), el("span", { className: "year" }, yearText(item.year))),
          el("p", { className: "genres" }, (item.genres || []).join(" · ") || "no genre listed"),
          stars(item.score),
        ];
        if (item.explanation) children.push(explanation(item.explanation.text));
        if (experiment) children.push(feedbackControls(item, feedbackWho, item.variant || answer.variant || null));
        return el("li", { className: "film" }, ...children);
      }),
    );
    if (!items.length) {
      setStatus("status", body.genres
        ? "No film to recommend in these genres. Tick other genres, or none, and try again."
        : "No film to recommend: every film of the catalog was left out.");
    } else {
      setStatus("status", `${items.length} film${items.length === 1 ? "" : "s"} for ${who}${answer.cold_start ? " (a new user: cold start)" : ""}.`);
    }
  }

  // --- a film's details and its nearest films ---------------------------------------------------

  async function openFilm(itemId, score) {
    const dialog = $("film");
    if (!dialog.open) {
      opener = document.activeElement;
      dialog.showModal();
    }
    $("film-title").textContent = "Loading…";
    $("film-facts").textContent = "";
    $("film-similar").replaceChildren();
    setStatus("film-status", "Loading the film and its nearest films…");
    try {
      const found = await api(`/items/${itemId}/similar?n=8`);
      const item = found.item;
      $("film-title").textContent = item.title + yearText(item.year);
      const facts = [(item.genres || []).join(", ") || "no genre listed", `film id ${item.item_id}`];
      if (score !== null && score !== undefined) facts.push(`predicted ${score.toFixed(1)}★ for this user`);
      $("film-facts").textContent = facts.join(" · ");
      $("film-similar").replaceChildren(
        ...found.similar.map((near) =>
          el("li", {}, filmButton(near), yearText(near.year), el("span", { className: "hint" }, ` · similarity ${near.similarity.toFixed(2)}`)),
        ),
      );
      setStatus("film-status", found.similar.length ? "" : "No other film in the catalog.");
    } catch (err) {
      $("film-title").textContent = "Film not available";
      setStatus("film-status", err.message);
    }
    $("film-close").focus();
  }

  async function openTitle(title) {
    try {
      const found = await api(`/items?q=${encodeURIComponent(title)}&limit=20`);
      const exact = found.items.find((item) => item.title.toLowerCase() === title.toLowerCase());
      const item = exact || found.items[0];
      if (!item) throw new ApiError(`No film titled “${title}” in the catalog.`, 404);
      await openFilm(item.item_id);
    } catch (err) {
      showError("error", err.message);
    }
  }

  function closeFilm() {
    $("film").close();
  }

  // --- start ------------------------------------------------------------------------------------

  async function loadService() {
    try {
      const health = await api("/health");
      $("service").textContent =
        `Serving model ${(health.model || "?").split(".").pop()} on ${health.n_users} users and ${health.n_items} films.`;
      $("user-id-hint").textContent = `A whole number from 1; this model knows ${health.n_users} users.`;
    } catch (err) {
      $("service").textContent = err.message;
      showError("error", err.message);
    }
  }

  // The bounds the service enforces, read from its OpenAPI spec: the longest text, the longest list,
  // the genres it knows.
  async function loadLimits() {
    let request = null;
    try {
      const spec = await api("/openapi.json");
      request = spec.components.schemas.RecommendRequest.properties;
    } catch (err) {
      return; // the defaults stand; the service's own errors still say what is wrong
    }
    limits.maxText = request.user_text.maxLength || limits.maxText;
    limits.maxN = request.n.maximum || limits.maxN;
    $("n").max = String(limits.maxN);
    $("n-hint").textContent = `From 1 to ${limits.maxN}.`;
    const named = (request.genres.items && request.genres.items.enum) || [];
    const seen = new Set();
    const genres = named.filter((g) => !seen.has(g.toLowerCase()) && seen.add(g.toLowerCase())); // sorted: capitals first
    $("genre-list").replaceChildren(
      ...genres.map((genre, k) =>
        el("div", { className: "choice" },
          el("input", { type: "checkbox", id: `genre-${k}`, value: genre }),
          el("label", { for: `genre-${k}` }, genre)),
      ),
    );
    $("genres").hidden = genres.length === 0;
    countText();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("ask").addEventListener("submit", recommend);
    $("who-user").addEventListener("change", showMode);
    $("who-text").addEventListener("change", showMode);
    $("user-text").addEventListener("input", countText);
    $("film-close").addEventListener("click", closeFilm);
    $("film").addEventListener("close", () => {
      if (opener && document.contains(opener)) opener.focus();
    });
    showMode();
    countText();
    loadService();
    loadLimits();
    loadExperiment();
  });
})();
