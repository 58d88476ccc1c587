// The parts of the Firebase JS SDK the page uses, bundled by `make web` into
// lib/sketchgen/web/vendor/firebase.js: the page loads no script from another origin.
export { initializeApp } from "firebase/app";
export {
  GoogleAuthProvider,
  connectAuthEmulator,
  createUserWithEmailAndPassword,
  getAuth,
  onAuthStateChanged,
  signInWithEmailAndPassword,
  signInWithPopup,
  signOut,
} from "firebase/auth";
