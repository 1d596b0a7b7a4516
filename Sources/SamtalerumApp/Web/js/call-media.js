// This side's media for a call: camera and microphone, the "Vis ikke mit ansigt" choice and
// the shared screen. Call decides when to open it and what its senders carry.

export class LocalMedia {
  constructor() {
    this.stream = null;
    this.notice = null;       // 'noCamera' | 'noMedia' when we continue with less
    this.screenTrack = null;
    this.muted = false;
    this.cameraOff = false;
    this.audioOnly = false;
  }

  get hasCamera() { return (this.stream?.getVideoTracks().length ?? 0) > 0; }
  get hasMicrophone() { return (this.stream?.getAudioTracks().length ?? 0) > 0; }
  get sharingScreen() { return this.screenTrack !== null; }
  static get canShareScreen() { return Boolean(navigator.mediaDevices?.getDisplayMedia); }

  /** Camera and microphone, else the microphone alone, else nothing: the call goes on. */
  async acquire() {
    if (this.stream) return;
    const devices = navigator.mediaDevices;
    if (!devices?.getUserMedia) {
      this.stream = new MediaStream();
      this.notice = 'noMedia';
      return;
    }
    try {
      this.stream = await devices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true },
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
      });
      this.applyEnabled();
      return;
    } catch (err) {
      console.warn('samtalerum: camera and microphone unavailable, trying microphone only', err);
    }
    try {
      this.stream = await devices.getUserMedia({ audio: true });
      this.notice = 'noCamera';
    } catch (err) {
      console.warn('samtalerum: microphone unavailable, continuing without local media', err);
      this.stream = new MediaStream();
      this.notice = 'noMedia';
    }
    this.applyEnabled();
  }

  /** Uses a stream the page already opened (the invite page's check), if any. */
  adopt(stream) {
    if (this.stream || !stream) return;
    this.stream = stream;
    if (!this.hasCamera) this.notice = this.hasMicrophone ? 'noCamera' : 'noMedia';
    this.applyEnabled();
  }

  setMuted(muted) {
    this.muted = muted;
    this.applyEnabled();
  }

  setCameraOff(off) {
    this.cameraOff = off;
    this.applyEnabled();
  }

  /**
   * "Vis ikke mit ansigt": nothing of the camera leaves the device (not even black frames),
   * so the peer's page says there is no picture.
   */
  setAudioOnly(on) {
    this.audioOnly = on;
    this.applyEnabled();
  }

  applyEnabled() {
    for (const track of this.stream?.getAudioTracks() ?? []) track.enabled = !this.muted;
    for (const track of this.stream?.getVideoTracks() ?? []) track.enabled = !this.audioOnly && !this.cameraOff;
  }

  /** Resolves true once a screen (or window) is being captured; `onEnded` when it stops. */
  async startScreenShare(onEnded) {
    if (this.screenTrack || !LocalMedia.canShareScreen) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      console.warn('samtalerum: screen sharing not started', err);
      return false;
    }
    const [track] = stream.getVideoTracks();
    if (!track) return false;
    this.screenTrack = track;
    // The browser's own "stop sharing" button ends the track.
    track.addEventListener('ended', onEnded);
    return true;
  }

  stopScreenShare() {
    if (!this.screenTrack) return false;
    this.screenTrack.stop();
    this.screenTrack = null;
    return true;
  }

  sendsVideo() {
    if (this.screenTrack) return true;
    return this.hasCamera && !this.audioOnly && !this.cameraOff;
  }

  /** What the video sender should carry now: the screen, the camera, or nothing. */
  currentVideoTrack() {
    if (this.screenTrack) return this.screenTrack;
    if (this.audioOnly) return null;
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  audioTrack() { return this.stream?.getAudioTracks()[0] ?? null; }

  stop() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stopScreenShare();
  }
}
