/*
 * facegate: face capture for the enrolment and face-login pages.
 *
 * Plain ES2019, no dependencies, no build step. Served as /static/face-capture.js under a
 * Content-Security-Policy of `script-src 'self'`: nothing here uses eval, inline handlers or
 * javascript: URLs, and elements are hidden with the `hidden` attribute, not inline styles.
 *
 * Page contract (rendered by the server):
 *   <form id="face-form" data-endpoint="/login/face" data-shots="1" data-auto="0">
 *     ...hidden inputs (csrf, req, ...), maybe a username...
 *     <div class="face-camera"><video id="face-video" playsinline muted></video>
 *       <canvas id="face-overlay"></canvas></div>
 *     <p id="face-status" role="status" aria-live="polite"></p>
 *     <button type="button" id="face-capture">Take picture</button>
 *     <div id="face-upload"><label for="face-file">...</label><input type="file" id="face-file"></div>
 *   </form>
 *
 * Each picture is POSTed on its own as multipart/form-data: every named input of the form plus
 * `image` (the JPEG or the chosen file). The server answers JSON:
 *   {"ok": true, "message": "...", "redirect": "/path"?}
 *   {"ok": false, "error": "...", "retry_after": seconds?}   (4xx; 429 when rate limited)
 *   {"ok": false, "busy": true, "retry_after": seconds}      (503: the face workers are all busy;
 *                                                             the script waits and sends again itself)
 *
 * The form carries data-state = starting | ready | no-camera | busy | waiting | done, for styling
 * and for tests.
 *
 * Liveness (data-liveness="/login/face/liveness"): the button starts a check instead of taking one
 * picture. POST data-liveness (the form's fields) answers {id, token, kind, params, prompt}; then
 * camera frames go one at a time, each waiting for the previous answer (so the rate is what the
 * server keeps up with), as image/jpeg to data-liveness/{id}/frame?token=..., each answer carrying
 * the next one-time token and what to do now (a prompt, and the move to draw). The challenge is drawn on the overlay
 * (a target for the nose, an arrow for a head turn, a ring once passed). When the server says
 * SUCCEEDED, the form is posted to data-endpoint with `liveness` = the check's id and no picture.
 * The form's data-challenge attribute names the running challenge, for styling and tests.
 */
(function () {
  'use strict';

  var SHOT_GAP_MS = 700; // pause between two pictures of one series
  var AUTO_DELAY_MS = 1500; // data-auto="1": first picture this long after the camera starts
  var REQUEST_TIMEOUT_MS = 30000;
  // A busy server (503 with "busy") is asked again this many times, after its Retry-After.
  var BUSY_RETRIES = 5;
  var JPEG_QUALITY = 0.92;
  var FRAME_QUALITY = 0.95; // liveness frames: the passive spoof cue needs little compression
  var FRAME_MAX_WIDTH = 640;
  var FRAME_MIN_GAP_MS = 60;
  var ERROR_HOLD_MS = 8000; // an error stays on screen this long before live guidance speaks again
  var ACCEPTED_TYPES = ['image/jpeg', 'image/png', 'image/webp'];

  var MSG = {
    starting: 'Starting the camera…',
    ready: 'Look at the camera and fit your face in the oval',
    orUpload: 'You can choose a photo instead.',
    network: 'Could not reach the server; check your connection and try again.',
    timeout: 'The server took too long to answer; please try again.',
    notReady: 'The camera is not ready yet; wait a moment and try again.',
    encodeFailed: 'The picture could not be taken; please try again or choose a photo.',
    badType: 'Please choose a JPEG, PNG or WebP photo.',
    tooLarge: 'That picture is too large for the server; please choose a smaller photo.',
    retryNow: 'You can try again now.',
    busy: 'The server is busy: trying again…',
    done: 'Done.'
  };

  function init() {
    var form = document.getElementById('face-form');
    if (!form || form.getAttribute('data-face-capture') === 'on') return;
    form.setAttribute('data-face-capture', 'on');

    var video = document.getElementById('face-video');
    var overlay = document.getElementById('face-overlay');
    var statusEl = document.getElementById('face-status');
    var captureBtn = document.getElementById('face-capture');
    var fileInput = document.getElementById('face-file');
    var uploadBox = document.getElementById('face-upload');
    var cameraBox = video ? closestCameraBox(video) : null;

    var endpoint = form.getAttribute('data-endpoint') || form.getAttribute('action') || location.pathname;
    var shots = clampInt(form.getAttribute('data-shots'), 1, 1, 10);
    var auto = form.getAttribute('data-auto') === '1';
    // Live guidance: small preview frames go to this endpoint while the camera is on.
    var checkUrl = form.getAttribute('data-check');
    // Liveness: the check's start endpoint, and the running challenge ({kind, params, move, done}).
    var livenessUrl = form.getAttribute('data-liveness');
    var challenge = null;
    var guideTimer = null;
    var guideInFlight = false;
    var lastErrorAt = 0;

    var stream = null;
    var cameraReady = false;
    var busy = false; // a series of pictures or an upload is under way
    var lockedUntil = 0; // rate limit (429): no new attempt before this time (ms since epoch)
    var lockTimer = null;
    var autoTimer = null;
    var autoDone = false;
    var leaving = false; // a redirect is under way: keep everything disabled
    var captureLabel = captureBtn ? captureBtn.textContent : '';

    // ---------- status and controls ----------

    function setStatus(text, kind) {
      if (!statusEl) return;
      statusEl.textContent = text;
      statusEl.classList.toggle('error', kind === 'error');
      statusEl.classList.toggle('busy', kind === 'busy');
      statusEl.classList.toggle('success', kind === 'success');
    }

    function setState(state) {
      form.setAttribute('data-state', state);
      if (state === 'busy') form.setAttribute('aria-busy', 'true');
      else form.removeAttribute('aria-busy');
    }

    function refreshControls() {
      var locked = Date.now() < lockedUntil;
      var blocked = busy || locked || leaving;
      if (captureBtn) captureBtn.disabled = blocked || !cameraReady;
      if (fileInput) fileInput.disabled = blocked;
    }

    // ---------- overlay: an oval face guide, the rest of the picture dimmed ----------

    function drawOverlay() {
      if (!overlay || !overlay.getContext) return;
      var w = overlay.clientWidth;
      var h = overlay.clientHeight;
      if (!w || !h) return;
      var dpr = window.devicePixelRatio || 1;
      var pw = Math.round(w * dpr);
      var ph = Math.round(h * dpr);
      if (overlay.width !== pw) overlay.width = pw;
      if (overlay.height !== ph) overlay.height = ph;
      var ctx = overlay.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      if (!cameraReady) return;

      // A face seen from about 50 cm fills roughly this much of a 4:3 webcam frame.
      var cx = w / 2;
      var cy = h * 0.47;
      var ry = h * 0.38;
      var rx = Math.min(ry * 0.76, w * 0.4);

      ctx.beginPath();
      ctx.rect(0, 0, w, h);
      ctx.ellipse(cx, cy, rx, ry, 0, 0, Math.PI * 2);
      ctx.fillStyle = 'rgba(0, 0, 0, 0.38)';
      ctx.fill('evenodd');

      ctx.beginPath();
      ctx.ellipse(cx, cy, rx, ry, 0, 0, Math.PI * 2);
      ctx.lineWidth = 3;
      ctx.strokeStyle = busy ? accentColour() : 'rgba(255, 255, 255, 0.92)';
      ctx.setLineDash(busy ? [] : [10, 7]);
      ctx.stroke();
      if (challenge) drawChallenge(ctx, w, h, cx, cy, rx, ry);
    }

    // Maps a point of the camera's frame (fractions, not mirrored) onto the mirrored, cropped
    // (object-fit: cover) preview.
    function toPreview(x, y, w, h) {
      var vw = video.videoWidth || 4;
      var vh = video.videoHeight || 3;
      var scale = Math.max(w / vw, h / vh);
      var dw = vw * scale;
      var dh = vh * scale;
      var px = (w - dw) / 2 + x * dw;
      return { x: w - px, y: (h - dh) / 2 + y * dh, scale: scale };
    }

    function drawChallenge(ctx, w, h, cx, cy, rx, ry) {
      var accent = accentColour();
      ctx.setLineDash([]);
      // Done: a full ring over the oval (the server says only what to do now, not how far it got).
      if (challenge.done) {
        ctx.beginPath();
        ctx.ellipse(cx, cy, rx + 7, ry + 7, 0, 0, Math.PI * 2);
        ctx.lineWidth = 6;
        ctx.strokeStyle = '#2da44e';
        ctx.stroke();
      }
      var params = challenge.params || {};
      if (challenge.kind === 'nose-target' && params.target) {
        var t = toPreview(params.target.x, params.target.y, w, h);
        var r = Math.max(8, (params.target.radius || 0.06) * (video.videoWidth || w) * t.scale);
        ctx.beginPath();
        ctx.arc(t.x, t.y, r, 0, Math.PI * 2);
        ctx.lineWidth = 4;
        ctx.strokeStyle = '#ffd33d';
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(t.x, t.y, 4, 0, Math.PI * 2);
        ctx.fillStyle = '#ffd33d';
        ctx.fill();
      } else if (/^(left|right|up|down)$/.test(challenge.move || '') && !challenge.done) {
        // The move to make now, as the server said in its last answer.
        drawArrow(ctx, cx, cy, rx, ry, challenge.move, accent);
      }
    }

    // The preview is a mirror: the person's own left is the screen's left.
    function drawArrow(ctx, cx, cy, rx, ry, dir, colour) {
      var dx = dir === 'left' ? -1 : dir === 'right' ? 1 : 0;
      var dy = dir === 'up' ? -1 : dir === 'down' ? 1 : 0;
      var len = Math.min(rx, ry) * 0.6;
      var sx = cx + dx * rx * 0.2;
      var sy = cy + dy * ry * 0.2;
      var ex = sx + dx * len;
      var ey = sy + dy * len;
      ctx.beginPath();
      ctx.moveTo(sx, sy);
      ctx.lineTo(ex, ey);
      ctx.lineWidth = 8;
      ctx.strokeStyle = colour;
      ctx.lineCap = 'round';
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(ex + dx * 14, ey + dy * 14);
      ctx.lineTo(ex - dy * 16 - dx * 6, ey - dx * 16 - dy * 6);
      ctx.lineTo(ex + dy * 16 - dx * 6, ey + dx * 16 - dy * 6);
      ctx.closePath();
      ctx.fillStyle = colour;
      ctx.fill();
    }

    function accentColour() {
      var c = '';
      try {
        c = getComputedStyle(form).getPropertyValue('--accent').trim();
      } catch (e) {
        c = '';
      }
      return c || '#1f6feb';
    }

    if (overlay) {
      if (typeof ResizeObserver === 'function') {
        new ResizeObserver(drawOverlay).observe(overlay);
      } else {
        window.addEventListener('resize', drawOverlay);
      }
    }

    // ---------- camera ----------

    function showCamera(on) {
      if (cameraBox) cameraBox.hidden = !on;
      if (captureBtn) captureBtn.hidden = !on;
    }

    function cameraErrorText(err) {
      var name = err && err.name ? err.name : '';
      if (name === 'NotAllowedError' || name === 'PermissionDeniedError') {
        return 'Camera permission was refused.';
      }
      if (name === 'SecurityError') {
        return 'This page is not allowed to use the camera.';
      }
      if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
        return 'No camera was found.';
      }
      if (name === 'NotReadableError' || name === 'TrackStartError' || name === 'AbortError') {
        return 'The camera is in use by another program or could not be started.';
      }
      return 'The camera could not be started.';
    }

    function noCamera(reason) {
      cameraReady = false;
      stopCamera();
      showCamera(false);
      setState('no-camera');
      setStatus(reason + ' ' + MSG.orUpload, '');
      refreshControls();
    }

    function stopCamera() {
      stopGuidance();
      if (autoTimer) {
        clearTimeout(autoTimer);
        autoTimer = null;
      }
      if (stream) {
        stream.getTracks().forEach(function (t) {
          t.stop();
        });
        stream = null;
      }
      if (video) video.srcObject = null;
      cameraReady = false;
    }

    function startCamera() {
      if (!video) {
        noCamera('This page has no camera preview.');
        return;
      }
      if (!window.isSecureContext) {
        noCamera('The camera can only be used over a secure (https) connection.');
        return;
      }
      if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
        noCamera('This browser cannot use a camera here.');
        return;
      }
      setState('starting');
      setStatus(MSG.starting, '');
      refreshControls();

      var wanted = {
        video: { facingMode: 'user', width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false
      };
      navigator.mediaDevices
        .getUserMedia(wanted)
        .catch(function (err) {
          // Only ideal constraints are asked for, but some old browsers still refuse: retry plainly.
          if (err && err.name === 'OverconstrainedError') {
            return navigator.mediaDevices.getUserMedia({ video: true, audio: false });
          }
          throw err;
        })
        .then(function (s) {
          if (leaving) {
            s.getTracks().forEach(function (t) {
              t.stop();
            });
            return;
          }
          stream = s;
          s.getVideoTracks().forEach(function (t) {
            t.addEventListener('ended', function () {
              if (stream === s) noCamera('The camera stopped.');
            });
          });
          video.muted = true;
          video.setAttribute('playsinline', '');
          video.srcObject = s;
          return waitForFrames(video).then(function () {
            var p = video.play();
            return p && typeof p.then === 'function' ? p : null;
          });
        })
        .then(function () {
          if (!stream || leaving) return;
          cameraReady = true;
          showCamera(true);
          if (!busy) {
            setState('ready');
            setStatus(MSG.ready, '');
          }
          refreshControls();
          drawOverlay();
          startGuidance();
          if (auto && !autoDone) {
            autoTimer = setTimeout(function () {
              autoTimer = null;
              if (autoDone || busy || !cameraReady || Date.now() < lockedUntil) return;
              autoDone = true;
              // Do not pop up validation bubbles unasked: if a required field is empty, wait
              // for the person to press the button.
              if (!form.checkValidity()) return;
              runSeries();
            }, AUTO_DELAY_MS);
          }
        })
        .catch(function (err) {
          noCamera(cameraErrorText(err));
        });
    }

    // Resolves once the video knows its size (loadedmetadata), or at once if it already does.
    function waitForFrames(v) {
      return new Promise(function (resolve) {
        if (v.readyState >= 1 && v.videoWidth) {
          resolve();
          return;
        }
        var done = false;
        function finish() {
          if (done) return;
          done = true;
          v.removeEventListener('loadedmetadata', finish);
          resolve();
        }
        v.addEventListener('loadedmetadata', finish);
        setTimeout(finish, 5000);
      });
    }

    function grabFrame() {
      return new Promise(function (resolve, reject) {
        var w = video.videoWidth;
        var h = video.videoHeight;
        if (!w || !h) {
          reject(new Error(MSG.notReady));
          return;
        }
        // The preview is mirrored with CSS only; the picture sent is the camera's own view.
        var c = document.createElement('canvas');
        c.width = w;
        c.height = h;
        var ctx = c.getContext('2d');
        ctx.drawImage(video, 0, 0, w, h);
        c.toBlob(
          function (blob) {
            if (blob && blob.size) resolve(blob);
            else reject(new Error(MSG.encodeFailed));
          },
          'image/jpeg',
          JPEG_QUALITY
        );
      });
    }

    // A liveness frame: the camera's view scaled to at most FRAME_MAX_WIDTH wide.
    function grabSmallFrame() {
      return new Promise(function (resolve, reject) {
        var vw = video.videoWidth;
        var vh = video.videoHeight;
        if (!vw || !vh) {
          reject(new Error(MSG.notReady));
          return;
        }
        var scale = Math.min(1, FRAME_MAX_WIDTH / vw);
        var c = document.createElement('canvas');
        c.width = Math.round(vw * scale);
        c.height = Math.round(vh * scale);
        c.getContext('2d').drawImage(video, 0, 0, c.width, c.height);
        c.toBlob(
          function (blob) {
            if (blob && blob.size) resolve(blob);
            else reject(new Error(MSG.encodeFailed));
          },
          'image/jpeg',
          FRAME_QUALITY
        );
      });
    }

    // ---------- live guidance ----------

    function startGuidance() {
      if (!checkUrl || guideTimer) return;
      guideTimer = setInterval(guideOnce, 1000);
    }

    function stopGuidance() {
      if (guideTimer) clearInterval(guideTimer);
      guideTimer = null;
    }

    // One small frame to the server: it answers with advice ("come closer") or "looks good".
    function guideOnce() {
      if (guideInFlight || busy || leaving || !cameraReady || !stream) return;
      if (Date.now() < lockedUntil || Date.now() - lastErrorAt < ERROR_HOLD_MS) return;
      var w = video.videoWidth;
      var h = video.videoHeight;
      if (!w || !h) return;
      var scale = Math.min(1, 320 / w);
      var c = document.createElement('canvas');
      c.width = Math.round(w * scale);
      c.height = Math.round(h * scale);
      c.getContext('2d').drawImage(video, 0, 0, c.width, c.height);
      guideInFlight = true;
      c.toBlob(
        function (blob) {
          if (!blob) {
            guideInFlight = false;
            return;
          }
          fetch(checkUrl, {
            method: 'POST',
            body: buildBody(blob, 'preview.jpg'),
            credentials: 'same-origin',
            headers: { Accept: 'application/json' }
          })
            .then(function (res) {
              return res.ok ? res.json() : null;
            })
            .then(function (data) {
              guideInFlight = false;
              if (!data || busy || leaving || Date.now() - lastErrorAt < ERROR_HOLD_MS) return;
              // With liveness the button starts a check rather than taking the picture.
              var msg = data.good && livenessUrl ? 'Looks good: start the check.' : String(data.message || '');
              setStatus(msg, data.good ? 'success' : '');
              if (cameraBox) cameraBox.classList.toggle('good', !!data.good);
            })
            .catch(function () {
              guideInFlight = false;
            });
        },
        'image/jpeg',
        0.7
      );
    }

    function flash() {
      if (!cameraBox) return;
      cameraBox.classList.remove('flash');
      // Force a reflow so that the animation starts again on every picture.
      void cameraBox.offsetWidth;
      cameraBox.classList.add('flash');
    }

    // ---------- sending ----------

    function buildBody(image, filename, extra) {
      var fd = new FormData(form);
      // The picture goes in as `image`, once; a named file input must not add another part.
      if (fileInput && fileInput.name) fd.delete(fileInput.name);
      fd.delete('image');
      if (image) fd.append('image', image, filename);
      if (extra) {
        Object.keys(extra).forEach(function (k) {
          fd.set(k, extra[k]);
        });
      }
      return fd;
    }

    // Resolves to {ok, status, data}; rejects only with {network: true} or {timeout: true}. A busy
    // server is asked again by itself (the request was not taken, so sending it again is safe).
    function post(image, filename, url, extra, rawBody) {
      var tries = 0;
      function attempt() {
        return postOnce(image, filename, url, extra, rawBody).then(function (r) {
          if (r.status === 503 && r.data && r.data.busy === true && tries < BUSY_RETRIES) {
            tries += 1;
            var secs = Math.min(10, Math.max(1, Number(r.data.retry_after) || 1));
            setStatus(MSG.busy, 'busy');
            return wait(secs * 1000).then(attempt);
          }
          return r;
        });
      }
      return attempt();
    }

    function postOnce(image, filename, url, extra, rawBody) {
      var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
      var timer = null;
      var timedOut = false;
      if (ctrl) {
        timer = setTimeout(function () {
          timedOut = true;
          ctrl.abort();
        }, REQUEST_TIMEOUT_MS);
      }
      var init = {
        method: 'POST',
        body: rawBody || buildBody(image, filename, extra),
        credentials: 'same-origin',
        headers: rawBody ? { Accept: 'application/json', 'Content-Type': 'image/jpeg' } : { Accept: 'application/json' },
        cache: 'no-store',
        redirect: 'follow'
      };
      if (ctrl) init.signal = ctrl.signal;
      return fetch(url || endpoint, init)
        .then(
          function (res) {
            return res.text().then(function (text) {
              var data = null;
              try {
                data = text ? JSON.parse(text) : null;
              } catch (e) {
                data = null;
              }
              if (!data || typeof data !== 'object') data = {};
              if (data.retry_after == null) {
                var ra = parseInt(res.headers.get('Retry-After') || '', 10);
                if (ra > 0) data.retry_after = ra;
              }
              return { ok: res.ok && data.ok === true, status: res.status, data: data };
            });
          },
          function () {
            throw timedOut ? { timeout: true } : { network: true };
          }
        )
        .then(
          function (r) {
            if (timer) clearTimeout(timer);
            return r;
          },
          function (e) {
            if (timer) clearTimeout(timer);
            throw e && (e.timeout || e.network) ? e : { network: true };
          }
        );
    }

    function failureText(r) {
      var d = r.data || {};
      if (typeof d.error === 'string' && d.error) return d.error;
      if (typeof d.message === 'string' && d.message && r.status >= 400) return d.message;
      if (r.status === 413) return MSG.tooLarge;
      if (r.status === 429) return 'Too many attempts.';
      if (r.status === 401 || r.status === 403) {
        return 'This page has expired or you are not allowed to do this; reload the page and try again.';
      }
      if (r.status >= 500) return 'The server had a problem (error ' + r.status + '); please try again later.';
      return 'The server did not accept the picture (error ' + r.status + '); please try again.';
    }

    // Only http(s) targets are followed; anything else (javascript:, data:) is ignored.
    function safeRedirect(target) {
      if (typeof target !== 'string' || !target) return null;
      try {
        var u = new URL(target, location.href);
        if (u.protocol === 'https:' || u.protocol === 'http:') return u.href;
      } catch (e) {
        return null;
      }
      return null;
    }

    function finishOk(r) {
      var d = r.data || {};
      var msg = typeof d.message === 'string' && d.message ? d.message : MSG.done;
      var target = safeRedirect(d.redirect);
      busy = false;
      if (target) {
        leaving = true;
        setState('done');
        setStatus(msg, 'success');
        refreshControls();
        stopCamera();
        drawOverlay();
        location.assign(target);
        return;
      }
      setState(cameraReady ? 'ready' : stream ? 'starting' : 'no-camera');
      setStatus(msg, 'success');
      refreshControls();
      drawOverlay();
    }

    function finishError(text, retryAfter) {
      lastErrorAt = Date.now();
      busy = false;
      setStatus(text, 'error');
      var secs = Math.ceil(Number(retryAfter) || 0);
      if (secs > 0) {
        lockFor(secs, text);
      } else {
        setState(cameraReady ? 'ready' : stream ? 'starting' : 'no-camera');
        refreshControls();
      }
      drawOverlay();
    }

    // 429: refuse new attempts for `secs` seconds and count down on the capture button (the
    // status is announced once, not every second).
    function lockFor(secs, text) {
      lockedUntil = Date.now() + secs * 1000;
      setState('waiting');
      // The server's own words may already say when ("Try again in 30 seconds."): say it once.
      if (!/\bagain\b/i.test(text)) {
        text += ' You can try again in ' + secs + (secs === 1 ? ' second.' : ' seconds.');
      }
      setStatus(text, 'error');
      if (lockTimer) clearInterval(lockTimer);
      function tick() {
        var left = Math.ceil((lockedUntil - Date.now()) / 1000);
        if (left <= 0) {
          clearInterval(lockTimer);
          lockTimer = null;
          lockedUntil = 0;
          if (captureBtn) captureBtn.textContent = captureLabel;
          setState(cameraReady ? 'ready' : 'no-camera');
          setStatus(MSG.retryNow, '');
          refreshControls();
          return;
        }
        if (captureBtn) captureBtn.textContent = captureLabel + ' (' + left + ' s)';
        refreshControls();
      }
      tick();
      lockTimer = setInterval(tick, 250);
    }

    function begin() {
      if (busy || leaving || Date.now() < lockedUntil) return false;
      if (!form.checkValidity()) {
        // e.g. an empty required username: let the browser point at it.
        if (typeof form.reportValidity === 'function') form.reportValidity();
        return false;
      }
      busy = true;
      setState('busy');
      refreshControls();
      drawOverlay();
      return true;
    }

    function wait(ms) {
      return new Promise(function (resolve) {
        setTimeout(resolve, ms);
      });
    }

    // Takes `shots` pictures, one request each, stopping at the first failure.
    function runSeries() {
      if (!cameraReady) {
        setStatus(MSG.notReady, 'error');
        return;
      }
      if (!begin()) return;
      var i = 0;
      var last = null;

      function label(n) {
        return shots > 1 ? 'Picture ' + n + ' of ' + shots + '…' : 'Sending the picture…';
      }

      function next() {
        i += 1;
        setStatus(label(i), 'busy');
        return grabFrame()
          .then(function (blob) {
            flash();
            return post(blob, 'capture.jpg');
          })
          .then(function (r) {
            if (!r.ok) {
              finishError(failureText(r), r.data.retry_after);
              return;
            }
            last = r;
            if (i >= shots) {
              finishOk(last);
              return;
            }
            if (!cameraReady) {
              finishError('The camera stopped before all the pictures were taken. ' + MSG.orUpload);
              return;
            }
            var m = r.data && typeof r.data.message === 'string' && r.data.message;
            setStatus((m ? m + ' ' : '') + 'Keep still…', 'busy');
            return wait(SHOT_GAP_MS).then(next);
          });
      }

      next().catch(function (e) {
        if (e && e.timeout) finishError(MSG.timeout);
        else if (e && e.network) finishError(MSG.network);
        else finishError((e && e.message) || MSG.encodeFailed);
      });
    }

    // The liveness check: start, stream frames until the server decides, then sign in with it.
    function runLiveness() {
      if (!cameraReady) {
        setStatus(MSG.notReady, 'error');
        return;
      }
      if (!begin()) return;
      setStatus('Starting the check…', 'busy');
      var id = null;

      function endChallenge() {
        challenge = null;
        form.removeAttribute('data-challenge');
        drawOverlay();
      }

      function fail(r) {
        endChallenge();
        finishError(failureText(r), r.data && r.data.retry_after);
      }

      var lastTime = -1;

      function frame(token) {
        // A frame the camera has not replaced yet would be the same picture twice: wait for a new one.
        if (video.currentTime === lastTime) {
          return wait(20).then(function () {
            return frame(token);
          });
        }
        lastTime = video.currentTime;
        return grabSmallFrame()
          .then(function (blob) {
            var started = Date.now();
            var url = livenessUrl + '/' + encodeURIComponent(id) + '/frame?token=' + encodeURIComponent(token);
            return post(null, null, url, null, blob).then(function (r) {
              return { r: r, took: Date.now() - started };
            });
          })
          .then(function (x) {
            var r = x.r;
            // Byte for byte the frame sent before (a frozen camera): the token still holds, try the next.
            if (r.status === 409 && r.data && r.data.refusal === 'Replayed') {
              return wait(FRAME_MIN_GAP_MS).then(function () {
                return frame(token);
              });
            }
            if (!r.ok) return fail(r);
            var d = r.data;
            challenge.move = d.move || null;
            if (d.status === 'SUCCEEDED') {
              challenge.done = true;
              drawOverlay();
              setStatus('Check passed. Signing in…', 'busy');
              return post(null, null, endpoint, { liveness: id }).then(function (s) {
                endChallenge();
                if (s.ok) finishOk(s);
                else finishError(failureText(s), s.data.retry_after);
              });
            }
            if (d.status !== 'IN_PROGRESS' || !d.token) {
              endChallenge();
              finishError((d.prompt || 'The check did not pass.') + ' You can try again.');
              return;
            }
            var hint = d.issue === 'several-faces' ? 'Only you should be in view. ' : d.issue === 'no-face' ? 'Your face is not in view. ' : '';
            setStatus(hint + (d.prompt || ''), 'busy');
            drawOverlay();
            if (!cameraReady) {
              endChallenge();
              finishError('The camera stopped during the check.');
              return;
            }
            return wait(Math.max(0, FRAME_MIN_GAP_MS - x.took)).then(function () {
              return frame(d.token);
            });
          });
      }

      post(null, null, livenessUrl)
        .then(function (r) {
          if (!r.ok) return fail(r);
          var d = r.data;
          id = d.id;
          challenge = { kind: d.kind, params: d.params || {}, move: d.move || null, done: false };
          form.setAttribute('data-challenge', String(d.kind || ''));
          setStatus(d.prompt || 'Follow the instructions.', 'busy');
          drawOverlay();
          return frame(d.token);
        })
        .catch(function (e) {
          endChallenge();
          if (e && e.timeout) finishError(MSG.timeout);
          else if (e && e.network) finishError(MSG.network);
          else finishError((e && e.message) || MSG.encodeFailed);
        });
    }

    function sendFile(file) {
      if (!file) return;
      if (file.type && ACCEPTED_TYPES.indexOf(file.type) < 0) {
        setStatus(MSG.badType, 'error');
        return;
      }
      if (!begin()) return;
      setStatus('Sending ' + (file.name ? '“' + file.name + '”' : 'the photo') + '…', 'busy');
      post(file, file.name || 'photo')
        .then(function (r) {
          if (r.ok) finishOk(r);
          else finishError(failureText(r), r.data.retry_after);
        })
        .catch(function (e) {
          finishError(e && e.timeout ? MSG.timeout : MSG.network);
        });
    }

    // ---------- wiring ----------

    if (captureBtn) {
      captureBtn.type = 'button';
      captureBtn.addEventListener('click', function () {
        if (autoTimer) {
          clearTimeout(autoTimer);
          autoTimer = null;
        }
        autoDone = true;
        if (livenessUrl) runLiveness();
        else runSeries();
      });
    }

    if (fileInput) {
      fileInput.addEventListener('change', function () {
        var f = fileInput.files && fileInput.files[0];
        // Clear the choice so that choosing the same file again still fires `change`.
        try {
          fileInput.value = '';
        } catch (e) {
          /* old browsers */
        }
        if (f) sendFile(f);
      });
      if (uploadBox) uploadBox.hidden = false;
    }

    // Enter in a text field submits the form natively: take a picture instead of navigating.
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!cameraReady) return;
      if (livenessUrl) runLiveness();
      else runSeries();
    });

    // Turn the camera off when leaving (its light goes off at once), and on again if the page
    // comes back from the back/forward cache.
    window.addEventListener('pagehide', function () {
      stopCamera();
    });
    window.addEventListener('pageshow', function (ev) {
      if (ev.persisted) {
        leaving = false;
        busy = false;
        refreshControls();
        startCamera();
      }
    });

    refreshControls();
    startCamera();
  }

  function closestCameraBox(el) {
    if (typeof el.closest === 'function') {
      var box = el.closest('.face-camera');
      if (box) return box;
    }
    return el.parentNode && el.parentNode.nodeType === 1 ? el.parentNode : null;
  }

  function clampInt(v, dflt, min, max) {
    var n = parseInt(v, 10);
    if (!(n >= min)) return dflt;
    return n > max ? max : n;
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
