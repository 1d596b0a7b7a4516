// Every text a person sees, in one place, so a later translation or a citizen-first rewording
// touches only this file. Short sentences, everyday words: many users have reading difficulties.

export const texts = {
  appName: 'Samtalerum',

  // Call states, shown in the status line.
  status: {
    idle: '',
    checking: 'Tjekker linket …',
    ready: 'Klar. Tryk på Deltag, når du er klar.',
    media: 'Starter kamera og mikrofon …',
    connecting: 'Forbinder …',
    waiting: 'Venter på den anden deltager …',
    negotiating: 'Den anden deltager er her. Forbinder …',
    connected: 'I forbindelse',
    peerLeft: 'Den anden deltager har forladt samtalen. Du kan vente her, eller lægge på.',
    peerLost: 'Den anden deltagers forbindelse blev afbrudt. Vent lidt, så kommer de måske tilbage.',
    reconnecting: 'Forbindelsen blev afbrudt. Prøver igen …',
    ended: 'Samtalen er slut. Du kan lukke vinduet nu.',
    failed: 'Forbindelsen virker ikke lige nu.',
  },

  // Friendly texts for the server's stable error codes (Docs/PROTOCOL.md).
  errors: {
    inviteInvalid: 'Linket virker ikke. Det kan være for gammelt eller skrevet forkert. Bed din medarbejder om et nyt link.',
    meetingEnded: 'Mødet er slut, eller linket er udløbet. Bed din medarbejder om et nyt link.',
    roomFull: 'Du er allerede med i mødet i et andet vindue eller på en anden enhed.',
    signInAgain: 'Du er ikke længere logget ind. Log ind igen.',
    notYourMeeting: 'Du har ikke adgang til dette møde.',
    roleNotAllowed: 'Din rolle kan ikke deltage i samtaler.',
    server: 'Der skete en fejl hos os. Prøv igen om lidt.',
    connectionLost: 'Forbindelsen blev afbrudt. Prøv igen.',
    noMedia: 'Vi kan ikke bruge dit kamera eller din mikrofon. Du kan stadig se og høre den anden.',
    noCamera: 'Vi kan ikke bruge dit kamera. Samtalen fortsætter kun med lyd.',
    autoplay: 'Tryk her for at høre og se den anden deltager',
  },

  controls: {
    join: 'Deltag',
    hangUp: 'Læg på',
    muteOn: 'Slå lyd fra',
    muteOff: 'Slå lyd til',
    cameraOn: 'Slå kamera fra',
    cameraOff: 'Slå kamera til',
    retry: 'Prøv igen',
  },

  video: {
    remote: 'Den anden deltager',
    local: 'Dig selv',
    remoteCameraOff: 'Den anden deltager har ikke kamera tændt',
  },

  join: {
    title: 'Velkommen til samtalen',
    intro: 'Tryk på knappen for at komme ind i samtalen med din medarbejder.',
    privacy: 'Kun du og din medarbejder er i samtalen. Du kan slå kameraet fra, når du er med.',
    missing: 'Linket mangler en del. Prøv at åbne linket fra beskeden igen.',
  },

  worker: {
    title: 'Samtalerum for medarbejdere',
    signInTitle: 'Log ind',
    tokenLabel: 'Dit adgangstoken',
    tokenHelp: 'Indsæt det token, du har fået. Det gemmes kun i dette faneblad.',
    signIn: 'Log ind',
    signOut: 'Log ud',
    signedInAs: (subject) => `Logget ind som ${subject}`,
    tokenRejected: 'Tokenet virker ikke. Tjek at du har kopieret det hele.',
    notWorker: 'Dette token er ikke til en medarbejder.',
    createTitle: 'Nyt møde',
    citizenRefLabel: 'Borgerens sagsnummer',
    citizenRefHelp: 'Bruges kun til journalen. Borgeren ser det ikke.',
    create: 'Opret møde',
    creating: 'Opretter …',
    createFailed: 'Mødet kunne ikke oprettes.',
    inviteTitle: 'Link til borgeren',
    inviteHelp: 'Send linket til borgeren. Linket er personligt og virker kun til dette møde.',
    copy: 'Kopiér link',
    copied: 'Linket er kopieret.',
    copyFailed: 'Kunne ikke kopiere. Markér linket og kopiér det selv.',
    expires: (when) => `Linket virker til ${when}.`,
    joinMeeting: 'Deltag i mødet',
    meetingLabel: (id) => `Møde ${id}`,
    back: 'Tilbage til forsiden',
    meetingExpired: 'Mødet er udløbet. Opret et nyt møde.',
  },

  landing: {
    title: 'Samtalerum',
    intro: 'Sikre videosamtaler mellem borgere og medarbejdere.',
    citizen: 'Er du borger? Brug det link, du har fået af din medarbejder.',
    workerLink: 'Til medarbejdere',
  },
};

/** Danish date and time, e.g. "26. november 2026 kl. 14.00". */
export function formatDateTime(date) {
  const day = new Intl.DateTimeFormat('da-DK', { day: 'numeric', month: 'long', year: 'numeric' }).format(date);
  const time = new Intl.DateTimeFormat('da-DK', { hour: '2-digit', minute: '2-digit' }).format(date);
  return `${day} kl. ${time}`;
}
