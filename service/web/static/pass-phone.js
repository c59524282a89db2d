// The phone's rotating pass (service/declarations/phone_page.py, checkin_core/rotating.py).
// A device key pair made here (WebCrypto Ed25519, the private key not extractable) is
// kept in IndexedDB; the service binds its public key into a signed pass once; from then
// on, with or without the network, the page shows every 15 s a new code: the bound pass,
// the time step, and this device's signature over (pass id, time step).
"use strict";
(function () {
  const root = document.getElementById("phone-pass");
  const box = document.getElementById("rotating-qr");
  const passId = root.dataset.passId;
  const STEP_S = Number(root.dataset.stepS) || 15;
  const PREFIX = "CG2:";
  const TAG = new TextEncoder().encode("CG2D:");
  const B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/passes/pass-sw.js", { scope: "/passes/" }).catch(() => {});
  }
  // This page itself, for the next time it is opened without the network.
  if (window.caches) caches.open("checkin-pass-v1").then((c) => c.add(location.href)).catch(() => {});

  function base45(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i += 2) {
      if (i + 1 < bytes.length) {
        let x = bytes[i] * 256 + bytes[i + 1];
        const c = x % 45;
        x = (x - c) / 45;
        const d = x % 45;
        out += B45[c] + B45[d] + B45[(x - d) / 45];
      } else {
        out += B45[bytes[i] % 45] + B45[Math.floor(bytes[i] / 45)];
      }
    }
    return out;
  }
  function unb64url(text) {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  }
  function b64url(bytes) {
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // --- IndexedDB: one record per pass ----------------------------------------------
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open("checkin-passes", 1);
      req.onupgradeneeded = () => req.result.createObjectStore("devices", { keyPath: "passId" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  function dbDo(db, mode, action) {
    return new Promise((resolve, reject) => {
      const req = action(db.transaction("devices", mode).objectStore("devices"));
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  // --- the device key: WebCrypto Ed25519, else the vendored @noble/ed25519 ----------
  async function newDevice() {
    try {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      return { passId, privateKey: pair.privateKey, publicRaw: pub };
    } catch (e) {
      // No Ed25519 in this browser's WebCrypto: the library, with a secret it can read.
      const ed = await import("/static/noble-ed25519.js");
      const secret = ed.utils.randomSecretKey();
      return { passId, secret, publicRaw: await ed.getPublicKeyAsync(secret) };
    }
  }
  async function sign(device, message) {
    if (device.privateKey) {
      return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, device.privateKey, message));
    }
    const ed = await import("/static/noble-ed25519.js");
    return ed.signAsync(message, device.secret);
  }

  async function bind(device) {
    const resp = await fetch(root.dataset.bindUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ device_key: b64url(device.publicRaw) }),
    });
    if (!resp.ok) throw new Error(`bind ${resp.status}`);
    const answer = await resp.json();
    device.bound = answer.bound;
    // The phone's clock may be off: the steps follow the service's.
    device.offsetMs = Date.parse(answer.server_time) - Date.now();
  }

  // --- the code -----------------------------------------------------------------------
  function stepNow(device) {
    return Math.floor((Date.now() + (device.offsetMs || 0)) / 1000 / STEP_S);
  }
  async function code(device, step) {
    const bound = unb64url(device.bound);
    const stepBytes = new Uint8Array(4);
    new DataView(stepBytes.buffer).setUint32(0, step);
    const message = new Uint8Array([...TAG, ...bound.subarray(5, 21), ...stepBytes]);
    const signature = await sign(device, message);
    return PREFIX + base45(new Uint8Array([...bound, ...stepBytes, ...signature]));
  }
  function draw(text, step) {
    const qr = qrcode(0, "M");
    qr.addData(text, "Alphanumeric");
    qr.make();
    const n = qr.getModuleCount();
    const quiet = 4;
    const scale = Math.max(3, Math.floor(Math.min(window.innerWidth - 16, 480) / (n + 2 * quiet)));
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = (n + 2 * quiet) * scale;
    const g = canvas.getContext("2d");
    g.fillStyle = "#fff";
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = "#000";
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) if (qr.isDark(r, c)) g.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
    }
    canvas.className = "qr";
    canvas.setAttribute("aria-hidden", "true");
    box.replaceChildren(canvas);
    box.dataset.step = String(step);
    box.dataset.qrVersion = String((n - 17) / 4);
  }

  async function start() {
    const db = await openDb();
    let device = await dbDo(db, "readonly", (s) => s.get(passId));
    if (!device || !device.bound) {
      device = device || (await newDevice());
      await bind(device);
      await dbDo(db, "readwrite", (s) => s.put(device));
    } else if (navigator.onLine) {
      // Re-read the service's clock while the network is there; keep going without it.
      bind(device).then(() => dbDo(db, "readwrite", (s) => s.put(device))).catch(() => {});
    }
    let shown = null;
    async function tick() {
      const step = stepNow(device);
      if (step !== shown) {
        shown = step;
        draw(await code(device, step), step);
      }
      document.getElementById("offline-note").hidden = navigator.onLine;
    }
    await tick();
    setInterval(tick, 1000);
  }

  start().catch(() => {
    document.getElementById("unsupported").hidden = false;
    document.getElementById("qr-status").hidden = true;
  });
})();
