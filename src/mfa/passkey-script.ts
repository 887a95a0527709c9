// The passkey button's script: the browser half of WebAuthn, written out here instead of loading a
// library from anywhere (SPEC 9: nothing from elsewhere). It is the same text on every page, so
// the page's CSP allows it by its hash; what differs per page (the endpoints, the way back) is read
// from data- attributes. Without JavaScript, or in a browser without WebAuthn, the passkey section
// stays hidden and the code form works as before.
import { createHash } from 'node:crypto';

export const PASSKEY_SCRIPT = `(function () {
  'use strict';
  var box = document.getElementById('passkey');
  if (!box || !window.PublicKeyCredential || !navigator.credentials) return;
  var button = document.getElementById('passkey-button');
  var status = document.getElementById('passkey-status');
  box.hidden = false;

  function encode(buffer) {
    var bytes = new Uint8Array(buffer), text = '';
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function decode(value) {
    var text = atob(value.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((value.length + 3) % 4));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes.buffer;
  }
  function withIds(list) {
    return (list || []).map(function (c) { return { type: c.type, id: decode(c.id), transports: c.transports }; });
  }
  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw new Error(data.error || 'The passkey did not work.');
        return data;
      });
    });
  }
  function fail(error) {
    var cancelled = error && (error.name === 'NotAllowedError' || error.name === 'AbortError');
    status.textContent = cancelled ? 'The passkey was not used. Try again, or use a code.' : (error && error.message) || 'The passkey did not work.';
    status.hidden = false;
    button.disabled = false;
  }
  // The credential as the server's JSON (both ceremonies), around the ceremony's own response fields.
  function asJson(credential, response) {
    return {
      id: credential.id, rawId: encode(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response
    };
  }
  function register(options) {
    options.challenge = decode(options.challenge);
    options.user.id = decode(options.user.id);
    options.excludeCredentials = withIds(options.excludeCredentials);
    return navigator.credentials.create({ publicKey: options }).then(function (credential) {
      var r = credential.response;
      return asJson(credential, {
        clientDataJSON: encode(r.clientDataJSON), attestationObject: encode(r.attestationObject),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : []
      });
    });
  }
  function authenticate(options) {
    options.challenge = decode(options.challenge);
    options.allowCredentials = withIds(options.allowCredentials);
    return navigator.credentials.get({ publicKey: options }).then(function (credential) {
      var r = credential.response;
      return asJson(credential, {
        clientDataJSON: encode(r.clientDataJSON), authenticatorData: encode(r.authenticatorData),
        signature: encode(r.signature), userHandle: r.userHandle ? encode(r.userHandle) : undefined
      });
    });
  }
  function done(result) {
    if (!result.recoveryCodes) { location.assign(result.next || box.dataset.rd); return; }
    var list = document.getElementById('passkey-code-list');
    result.recoveryCodes.forEach(function (code) {
      var item = document.createElement('li'), text = document.createElement('code');
      text.textContent = code;
      item.appendChild(text);
      list.appendChild(item);
    });
    document.getElementById('passkey-continue').href = result.next || box.dataset.rd;
    Array.prototype.forEach.call(document.querySelectorAll('[data-enrol]'), function (el) { el.hidden = true; });
    document.getElementById('passkey-done').hidden = false;
    document.title = 'Save your recovery codes';
  }
  button.addEventListener('click', function () {
    button.disabled = true;
    status.hidden = true;
    var registering = box.dataset.mode === 'register';
    post(box.dataset.options, { rd: box.dataset.rd })
      .then(registering ? register : authenticate)
      .then(function (credential) { return post(box.dataset.verify, { credential: credential, rd: box.dataset.rd }); })
      .then(done, fail);
  });
})();`;

/** The CSP source that allows exactly this script. */
export const PASSKEY_SCRIPT_HASH = `'sha256-${createHash('sha256').update(PASSKEY_SCRIPT, 'utf8').digest('base64')}'`;
