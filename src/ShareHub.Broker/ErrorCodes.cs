namespace ShareHub.Broker;

/// <summary>
/// Stable codes for errors and audit outcomes of the broker (STYLE.md §7). They appear in the ProblemDetails
/// <c>type</c> (as <c>urn:sharehub:error:CODE</c>), in audit entries and in docs/architecture.md. Policy decision
/// codes (SH-P…) come from the policy engine and are listed in docs/policies.md.
/// </summary>
public static class ErrorCodes
{
    /// <summary>The request body is not a valid signal (see the <c>errors</c> member).</summary>
    public const string InvalidSignal = "SH-V0001";

    /// <summary>The request body is not readable JSON of the expected shape.</summary>
    public const string MalformedBody = "SH-V0002";

    /// <summary>The request body exceeds the size limit.</summary>
    public const string BodyTooLarge = "SH-V0003";

    /// <summary>The request body is not <c>application/json</c>.</summary>
    public const string UnsupportedMediaType = "SH-V0004";

    /// <summary>The <c>Idempotency-Key</c> header is not 1–64 printable ASCII characters.</summary>
    public const string InvalidIdempotencyKey = "SH-V0005";

    /// <summary>The <c>Idempotency-Key</c> was already used by this organisation for a different request.</summary>
    public const string IdempotencyKeyReused = "SH-V0006";

    /// <summary>A batch submission holds no signals or more than the maximum (<c>SubmitSignalBatchRequest.MaxSignals</c>).</summary>
    public const string InvalidBatch = "SH-V0007";

    /// <summary>
    /// A batch acknowledgement holds no deliveries, more than the maximum
    /// (<c>AcknowledgeDeliveriesRequest.MaxDeliveries</c>), or an item without a delivery id.
    /// </summary>
    public const string InvalidAcknowledgements = "SH-V0008";

    /// <summary>Subject type must be bsn, kvk or address.</summary>
    public const string UnknownSubjectType = "SH-V0101";

    /// <summary>BSN must be nine digits passing the elfproef.</summary>
    public const string InvalidBsn = "SH-V0102";

    /// <summary>KvK number must be eight digits.</summary>
    public const string InvalidKvk = "SH-V0103";

    /// <summary>Address must be given and reasonably short.</summary>
    public const string InvalidAddress = "SH-V0104";

    /// <summary>Category is not defined in the active policy set.</summary>
    public const string UnknownCategory = "SH-V0105";

    /// <summary>Purpose is not defined in the active policy set.</summary>
    public const string UnknownPurpose = "SH-V0106";

    /// <summary>Recipients missing, duplicated, too many, the submitter itself, or not participants.</summary>
    public const string InvalidRecipients = "SH-V0107";

    /// <summary>Payload missing, not a JSON object, or too large.</summary>
    public const string InvalidPayload = "SH-V0108";

    /// <summary>Case reference has an invalid format.</summary>
    public const string InvalidCaseReference = "SH-V0109";

    /// <summary>The caller is not authenticated.</summary>
    public const string Unauthenticated = "SH-A0401";

    /// <summary>The caller's organisation is not a participant of the partnership, or lacks the role.</summary>
    public const string Forbidden = "SH-A0403";

    /// <summary>The requested resource does not exist or is not visible to the caller.</summary>
    public const string NotFound = "SH-N0404";

    /// <summary>The database is unavailable; nothing was stored.</summary>
    public const string StorageUnavailable = "SH-S0503";

    /// <summary>The hub is at its concurrency limit; nothing was done, retry after the indicated delay.</summary>
    public const string Overloaded = "SH-S0504";

    /// <summary>A policy set was activated.</summary>
    public const string PolicySetActivated = "SH-P0900";

    /// <summary>A changed policy set was refused; the active one stays.</summary>
    public const string PolicySetRejected = "SH-P0901";

    /// <summary>A recipient acknowledged a delivery.</summary>
    public const string Acknowledged = "SH-D0001";

    /// <summary>An acknowledgement named an unknown delivery or came from another recipient.</summary>
    public const string AcknowledgementRejected = "SH-D0002";

    /// <summary>The dispatcher published a delivery to the recipient's queue.</summary>
    public const string Dispatched = "SH-D0003";

    /// <summary>Somebody read the audit trail (search, export, art. 15 report, web page).</summary>
    public const string AuditRead = "SH-U0001";

    /// <summary>The audit hash chain and its signed checkpoints were verified and found intact.</summary>
    public const string AuditVerified = "SH-U0002";

    /// <summary>Verification found a changed, missing or reordered audit entry or a bad checkpoint.</summary>
    public const string AuditVerificationFailed = "SH-U0003";

    /// <summary>The subject to search for is not a valid BSN, KvK number, address or pseudonym.</summary>
    public const string AuditInvalidSubject = "SH-U0101";

    /// <summary>An audit search parameter is invalid (period, format, limit).</summary>
    public const string AuditInvalidQuery = "SH-U0102";

    /// <summary>The retention purge deleted a signal's payload and submitted identifier.</summary>
    public const string RetentionPurged = "SH-U0201";

    /// <summary>
    /// A signal names a case that does not exist, or in which the provider does not take part (one answer for both, so
    /// nobody learns which cases exist). Nothing is stored; the attempt is audited.
    /// </summary>
    public const string UnknownCase = "SH-C0001";

    /// <summary>A case command is invalid (reference, weighing, phase, participants, task, question or answer).</summary>
    public const string InvalidCaseCommand = "SH-C0002";

    /// <summary>The case is closed: no more signals, events, questions or answers.</summary>
    public const string CaseClosed = "SH-C0003";

    /// <summary>A case moves forward through the RIEC phases only, one or more steps, never back.</summary>
    public const string PhaseNotForward = "SH-C0004";

    /// <summary>A case with this reference exists already.</summary>
    public const string CaseExists = "SH-C0005";

    /// <summary>Only an analyst of the RIEC bureau opens cases, and only the case's owner changes it.</summary>
    public const string NotCaseOwner = "SH-C0006";

    /// <summary>A case can only be opened from signals the owner submitted or received.</summary>
    public const string SignalNotVisible = "SH-C0007";

    /// <summary>The command belongs to another phase (questions in bevraging, interventions in interventie).</summary>
    public const string WrongCasePhase = "SH-C0008";

    /// <summary>A question was answered already with the other bit (an answer is final).</summary>
    public const string AlreadyAnswered = "SH-C0010";

    /// <summary>The answer quotes another subject pseudonym than the question.</summary>
    public const string AnswerSubjectMismatch = "SH-C0011";

    /// <summary>409: the case was changed by another command at the same time; nothing was stored — read it and retry.</summary>
    public const string CaseChangedConcurrently = "SH-C0012";

    /// <summary>An organisation took part in a case or answered a question (audit outcome code).</summary>
    public const string CaseRecorded = "SH-C0100";

    /// <summary>The ProblemDetails <c>type</c> URI for a code.</summary>
    public static string TypeUri(string code) => $"urn:sharehub:error:{code}";
}
