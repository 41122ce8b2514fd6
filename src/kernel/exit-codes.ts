/** Exit codes an app server chooses, read by the supervisor (anything else is a crash). */

/** Its configuration (SW_* variables) is refused; starting it again changes nothing. */
export const EXIT_CONFIG = 2;
/** The port it was told to listen on is taken: it may be started again on another. */
export const EXIT_PORT_TAKEN = 3;
