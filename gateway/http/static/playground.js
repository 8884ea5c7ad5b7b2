// The playground: build a tiling or a crop, have /demo/token sign it, show
// the claims, the signed URL, the Cloudinary chain and the picture.
// No framework, no inline handlers: the page's CSP allows this file only.
"use strict";

(function () {
  const form = document.getElementById("builder");
  const tiles = document.getElementById("tiles");
  const template = document.getElementById("tile-template");
  const problem = document.getElementById("problem");
  const picture = document.getElementById("picture");
  const pictureSize = document.getElementById("picture-size");
  const images = Array.from(document.querySelectorAll("figure.original")).map(
    (figure) => figure.dataset.image
  );
  const MAX_TILES = 9;

  function field(name) {
    return form.elements.namedItem(name);
  }

  // A number field holding text the browser cannot read as a number ("1e",
  // "--5", "1e400") reports an empty value: say so rather than sign without it.
  class Unreadable extends Error {}

  function fieldName(input) {
    const item = input.closest("#tiles li");
    const own = input.closest("label").firstChild.textContent.trim();
    if (item) return "tile " + (Array.from(tiles.children).indexOf(item) + 1) + " " + own;
    return (input.closest("fieldset").id === "crop" ? "crop " : "tile ") + own;
  }

  function integer(input) {
    if (input.validity.badInput) {
      throw new Unreadable(fieldName(input) + ": not a number");
    }
    const text = input.value.trim();
    return text === "" ? null : Number(text);
  }

  function kind() {
    return form.querySelector('input[name="kind"]:checked').value;
  }

  function showKind() {
    document.getElementById("tiling").hidden = kind() !== "tiling";
    document.getElementById("crop").hidden = kind() !== "crop";
  }

  function addTile(image) {
    if (tiles.children.length >= MAX_TILES) return;
    const item = template.content.firstElementChild.cloneNode(true);
    const select = item.querySelector("select");
    select.value = image || images[tiles.children.length % images.length];
    // The first tile is the base picture: it has no offset.
    item.querySelector(".offset").hidden = tiles.children.length === 0;
    tiles.appendChild(item);
  }

  // How wide each tile comes out: the width asked for, unless fit keeps the
  // original's aspect within a height, or only a height is given.
  // The renderer's rounding of W0 x height / H0: half up, at least a pixel,
  // worked on whole numbers as the renderer does (1200 x 41 / 800 is 61.5,
  // 62; 1200 x (41 / 800) in doubles is 61.4999...).
  function scaledWidth(W0, height, H0) {
    return Math.max(1, Math.floor((2 * W0 * height + H0) / (2 * H0)));
  }

  // A tile's width as the renderer works it out from the originals' size.
  function tileWidth() {
    const original = document.getElementById("tiling").dataset;
    const [W0, H0] = [Number(original.originalWidth), Number(original.originalHeight)];
    const width = integer(field("tile-width"));
    const height = integer(field("tile-height"));
    const hasWidth = width !== null && width > 0;
    if (height === null || height <= 0) return hasWidth ? width : 0;
    if (!hasWidth) return scaledWidth(W0, height, H0);
    if (field("tile-crop").value !== "fit") return width;
    // Fit: the width when it binds (width / W0 <= height / H0), else from the height.
    return width * H0 <= height * W0 ? width : scaledWidth(W0, height, H0);
  }

  // Where each added tile must go to start where the picture ends (see the
  // page's "Why 800, then 1200?"): centred on the picture so far, the i-th
  // tile of width W at (i + 1) × W / 2; from its west or east edge, i × W.
  function adjacentOffsets() {
    if (field("tile-width").validity.badInput) return;
    if (field("tile-height").validity.badInput) return;
    const width = tileWidth();
    const gravity = field("tile-gravity").value;
    Array.from(tiles.children).forEach((item, i) => {
      const x = gravity === "center" ? ((i + 1) * width) / 2 : i * width;
      item.querySelector('input[name="tile-x"]').value = i === 0 ? "" : Math.floor(x);
    });
  }

  function step(entries) {
    const doc = {};
    for (const [key, value] of entries) {
      if (value !== null && value !== "") doc[key] = value;
    }
    return doc;
  }

  function tilingRequest() {
    const items = Array.from(tiles.children);
    const sizing = [
      ["crop", field("tile-crop").value],
      ["width", integer(field("tile-width"))],
      ["height", integer(field("tile-height"))],
    ];
    const gravity = field("tile-gravity").value;
    const transformations = items.map((item, i) => {
      if (i === 0) return step(sizing);
      return step([
        ["overlay", item.querySelector("select").value],
        ...sizing,
        ["gravity", gravity === "center" ? null : gravity],
        ["x", integer(item.querySelector('input[name="tile-x"]'))],
      ]);
    });
    return { image: items[0].querySelector("select").value, transformations };
  }

  function cropRequest() {
    const steps = [
      step([
        ["crop", field("crop-mode").value],
        ["width", integer(field("crop-width"))],
        ["height", integer(field("crop-height"))],
        ["gravity", field("crop-gravity").value],
        ["x", integer(field("crop-x"))],
        ["y", integer(field("crop-y"))],
      ]),
    ];
    const effect = field("crop-effect").value;
    if (effect) steps.push({ effect });
    return { image: field("crop-image").value, transformations: steps };
  }

  // What an earlier request signed must not stay beside a refusal of this one,
  // as if it were what the controls now say.
  function clear() {
    document.getElementById("claims").textContent = "(sign something)";
    for (const id of ["gateway-url", "cloudinary-url"]) {
      const a = document.getElementById(id);
      a.href = "#";
      a.textContent = "";
    }
    document.getElementById("chain").textContent = "";
    document.getElementById("cloudinary-url-line").hidden = true;
    picture.hidden = true;
    delete picture.dataset.state;
    picture.removeAttribute("src");
    pictureSize.textContent = "";
  }

  function say(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function describe(doc) {
    const errors = (doc && doc.errors) || [];
    return errors
      .map((e) => {
        const where = e.source && (e.source.pointer || e.source.parameter);
        return (where ? where + ": " : "") + (e.detail || e.title);
      })
      .join("; ");
  }

  function link(id, url) {
    const a = document.getElementById(id);
    a.href = url;
    a.textContent = url;
  }

  async function sign() {
    say("");
    let request;
    try {
      request = kind() === "tiling" ? tilingRequest() : cropRequest();
    } catch (error) {
      if (!(error instanceof Unreadable)) throw error;
      clear();
      say(error.message);
      return;
    }
    let response;
    try {
      response = await fetch("/demo/token", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
    } catch (error) {
      clear();
      say("The gateway did not answer: " + error);
      return;
    }
    const doc = await response.json().catch(() => null);
    if (!response.ok) {
      clear();
      say(describe(doc) || "The gateway refused it (" + response.status + ").");
      return;
    }
    show(doc);
  }

  function show(doc) {
    document.getElementById("claims").textContent = JSON.stringify(doc.claims, null, 2);
    link("gateway-url", doc.url);
    document.getElementById("chain").textContent =
      doc.chain || "(an image of this token is not on Cloudinary)";
    const redirected = document.getElementById("cloudinary-url-line");
    redirected.hidden = !doc.cloudinaryUrl;
    if (doc.cloudinaryUrl) link("cloudinary-url", doc.cloudinaryUrl);
    pictureSize.textContent = "loading…";
    picture.dataset.state = "loading";
    picture.hidden = false;
    picture.src = doc.url;
  }

  picture.addEventListener("load", () => {
    picture.dataset.state = "loaded";
    pictureSize.textContent = picture.naturalWidth + " × " + picture.naturalHeight + " pixels";
  });

  picture.addEventListener("error", async () => {
    if (!picture.getAttribute("src")) return;
    picture.dataset.state = "failed";
    pictureSize.textContent = "The picture did not load.";
    // A refusal is a JSON:API document; a redirect is opaque from here.
    try {
      const answer = await fetch(picture.src, { redirect: "manual" });
      if (answer.status >= 400) {
        const detail = describe(await answer.json());
        if (detail) pictureSize.textContent = "The gateway refused it: " + detail;
      }
    } catch (error) {
      // The CDN is out of reach: the sentence above says enough.
    }
  });

  function threeTiles() {
    form.querySelector('input[name="kind"][value="tiling"]').checked = true;
    showKind();
    field("tile-crop").value = "fit";
    field("tile-width").value = "800";
    field("tile-height").value = "";
    field("tile-gravity").value = "center";
    tiles.replaceChildren();
    images.slice(0, 3).forEach((image) => addTile(image));
    adjacentOffsets();
    return sign();
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") showKind();
    const sizing = ["tile-crop", "tile-width", "tile-height", "tile-gravity"];
    if (sizing.includes(event.target.name)) adjacentOffsets();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sign();
  });
  document.getElementById("add-tile").addEventListener("click", () => {
    addTile();
    adjacentOffsets();
  });
  document.getElementById("remove-tile").addEventListener("click", () => {
    if (tiles.children.length > 1) tiles.lastElementChild.remove();
  });
  document.getElementById("adjacent").addEventListener("click", adjacentOffsets);
  document.getElementById("three-tiles").addEventListener("click", threeTiles);

  images.slice(0, 3).forEach((image) => addTile(image));
  adjacentOffsets();
  showKind();
  document.body.dataset.ready = "true";
})();
